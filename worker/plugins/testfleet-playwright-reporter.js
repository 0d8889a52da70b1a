// testfleet-playwright-reporter -- live per-test events for testfleet-worker.
//
// The worker runs `playwright test --reporter=<this file>` with an open pipe
// whose number is in TESTFLEET_EVENTS_FD, and this reporter writes one JSON
// object per line to it, the same lines as the pytest plugin (see
// docs/protocol.md, "Worker <-> runner", and docs/runners.md):
//
//     {"e": "start", "id": "tests/login.spec.ts:12 › login › shows error"}
//     {"e": "finish", "id": "...", "outcome": "failed", "dur": 1.2,
//      "msg": "Error: expect(locator).toHaveText(expected) failed",
//      "details": "...", "file": "tests/login.spec.ts", "line": 12}
//
// The test id is the one `testfleet` discovers with `playwright test --list
// --reporter=json`: the file relative to the directory Playwright runs in,
// ":" and the line of the test, then the titles of the enclosing describe
// blocks and of the test, each after " › " (empty titles left out); when the
// configuration declares more than one project, "[project] › " comes first.
//
// Outcomes: passed -> passed; failed -> failed; skipped (test.skip,
// test.fixme) -> skipped; timedOut or interrupted -> error; a test marked
// test.fail() that fails -> xfailed, and one that passes -> failed
// ("expected to fail, but passed").
//
// A package manager in front of Playwright (npx, yarn, pnpm exec) does not
// pass descriptor 3 on; the reporter then opens the pipe through the
// process that the worker started, the leader of its process group
// (/proc/<pgrp>/fd/<n>). Without TESTFLEET_EVENTS_FD it does nothing.
// CommonJS, Node's standard library only.
'use strict';

const fs = require('fs');
const path = require('path');

const SEP = ' \u203a ';
const MSG_MAX_CHARS = 1000;
const DETAILS_MAX_BYTES = 64 * 1024;
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b[@-Z\\-_]/g;

// The process group id of this process, from /proc/self/stat ("pid (comm)
// S ppid pgrp ..."; comm may hold spaces and ')', so parse after the last
// ')'). -1 when unreadable.
function processGroup() {
	try {
		const stat = fs.readFileSync('/proc/self/stat', 'utf8');
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		const pgrp = parseInt(fields[2], 10);
		return Number.isInteger(pgrp) && pgrp > 0 ? pgrp : -1;
	} catch (e) {
		return -1;
	}
}

function isPipe(fd) {
	try {
		return fs.fstatSync(fd).isFIFO();
	} catch (e) {
		return false;
	}
}

// The events pipe, or -1. The descriptor itself is only trusted when this
// process is the one the worker started (it leads its group); otherwise the
// number may belong to something the runtime opened, so the leader's copy
// is opened instead.
function openEvents() {
	const value = process.env.TESTFLEET_EVENTS_FD || '';
	if (!/^[0-9]+$/.test(value))
		return -1;
	const n = parseInt(value, 10);
	const pgrp = processGroup();
	if (pgrp === process.pid || pgrp < 0)
		return isPipe(n) ? n : -1;
	try {
		const fd = fs.openSync(`/proc/${pgrp}/fd/${n}`,
				       fs.constants.O_WRONLY);
		if (isPipe(fd))
			return fd;
		fs.closeSync(fd);
	} catch (e) {
		// Fall through: no events, the worker reads the exit status.
	}
	return -1;
}

function clean(text) {
	return String(text).replace(ANSI, '').replace(/\u0000/g, '\ufffd');
}

function oneLine(text) {
	const first = clean(text).trim().split('\n', 1)[0].replace(/\r$/, '');
	return first.length > MSG_MAX_CHARS ? first.slice(0, MSG_MAX_CHARS)
					    : first;
}

function capDetails(text) {
	const s = clean(text);
	if (Buffer.byteLength(s, 'utf8') <= DETAILS_MAX_BYTES)
		return s;
	const marker = '\n[... truncated ...]';
	const keep = DETAILS_MAX_BYTES - marker.length;
	// Cut on a character boundary: decoding a cut buffer drops a partial
	// sequence as U+FFFD, so trim that too.
	const cut = Buffer.from(s, 'utf8').subarray(0, keep).toString('utf8');
	return cut.replace(/\ufffd$/, '') + marker;
}

// "tests/a.spec.ts:12 › describe › title", with "[project] › " in front
// when the configuration has several projects.
function testId(test, cwd, withProject) {
	const titles = [];
	for (let s = test.parent; s && s.type === 'describe'; s = s.parent) {
		if (s.title)
			titles.unshift(s.title);
	}
	if (test.title)
		titles.push(test.title);
	let file = path.relative(cwd, test.location.file);
	file = file.split(path.sep).join('/');
	let id = `${file}:${test.location.line}`;
	if (titles.length)
		id += SEP + titles.join(SEP);
	if (withProject) {
		const project = test.parent.project();
		id = `[${project ? project.name : ''}]` + SEP + id;
	}
	return { id, file };
}

function outcomeOf(test, result) {
	const status = result.status;
	if (status === 'skipped')
		return 'skipped';
	if (status === 'timedOut' || status === 'interrupted')
		return 'error';
	if (test.expectedStatus === 'failed')
		return status === 'failed' ? 'xfailed' : 'failed';
	return status === 'passed' ? 'passed' : 'failed';
}

function errorsOf(result) {
	if (result.errors && result.errors.length)
		return result.errors;
	return result.error ? [result.error] : [];
}

function skipReason(test, result) {
	const notes = (result.annotations && result.annotations.length)
			      ? result.annotations
			      : test.annotations || [];
	for (const a of notes) {
		if ((a.type === 'skip' || a.type === 'fixme') && a.description)
			return a.description;
	}
	return '';
}

class TestfleetReporter {
	constructor() {
		this.fd = openEvents();
		this.cwd = process.cwd();
		this.withProject = false;
	}

	printsToStdio() {
		return false;
	}

	onBegin(config) {
		this.withProject = (config.projects || []).length > 1;
	}

	emit(obj) {
		if (this.fd < 0)
			return;
		let data = Buffer.from(JSON.stringify(obj) + '\n', 'utf8');
		try {
			while (data.length) {
				let n;
				try {
					n = fs.writeSync(this.fd, data);
				} catch (e) {
					if (e.code === 'EAGAIN')
						continue;
					throw e;
				}
				data = data.subarray(n);
			}
		} catch (e) {
			// The worker went away: stop writing, keep testing.
			this.fd = -1;
		}
	}

	onTestBegin(test) {
		this.emit({ e: 'start',
			    id: testId(test, this.cwd, this.withProject).id });
	}

	onTestEnd(test, result) {
		const { id, file } = testId(test, this.cwd, this.withProject);
		const outcome = outcomeOf(test, result);
		const errors = errorsOf(result);
		const ev = {
			e: 'finish',
			id,
			outcome,
			dur: Math.max(0, result.duration || 0) / 1000,
			file,
			line: test.location.line,
		};
		let msg = '';
		if (outcome === 'failed' && test.expectedStatus === 'failed' &&
		    result.status === 'passed')
			msg = 'expected to fail, but passed';
		else if (errors.length)
			msg = oneLine(errors[0].message || errors[0].value || '');
		else if (outcome === 'skipped')
			msg = oneLine(skipReason(test, result));
		if (msg)
			ev.msg = msg;
		if (errors.length) {
			const text = errors
				.map((e) => e.stack || e.message || e.value || '')
				.filter((s) => s)
				.join('\n\n');
			if (text)
				ev.details = capDetails(text);
		}
		this.emit(ev);
	}
}

module.exports = TestfleetReporter;
