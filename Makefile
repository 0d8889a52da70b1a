# testfleet -- build, test, install. See README.md.
PREFIX ?= /usr/local
CC ?= cc
PKGS := hiredis libevent msgpack yaml-0.1 libxml-2.0 jansson libcurl
OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CPPFLAGS += -D_GNU_SOURCE -Ishared $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
PYTHON := /usr/bin/python3

SHARED_SRC := $(wildcard shared/*.c)
PRODUCER_SRC := $(wildcard producer/*.c)
WORKER_SRC := $(wildcard worker/*.c)
SHARED_OBJ := $(SHARED_SRC:%.c=build/%.o)
PRODUCER_OBJ := $(PRODUCER_SRC:%.c=build/%.o)
WORKER_OBJ := $(WORKER_SRC:%.c=build/%.o)
# Producer modules other than main, for its unit tests.
PRODUCER_LIB_OBJ := $(filter-out build/producer/main.o,$(PRODUCER_OBJ))
WORKER_LIB_OBJ := $(filter-out build/worker/main.o,$(WORKER_OBJ))

UNIT_SRC := $(wildcard shared/tests/test_*.c producer/tests/test_*.c worker/tests/test_*.c)
UNIT_BIN := $(UNIT_SRC:%.c=build/%)
# shared/tests/test_junit.c again, against the worker's JUnit reader.
UNIT_BIN += build/shared/tests/test_junit_dl

# The worker reads JUnit XML only from runners that sent no per-test
# events: its copy of shared/junit.c loads libxml2 on first use
# (JUNIT_DLOPEN, see that file), and it does not link libxml2, so an idle
# worker maps neither libxml2 nor the ICU and libstdc++ it pulls in.
WORKER_LIBS := $(filter-out -lxml2,$(LIBS))
JUNIT_DL_OBJ := build/dl/shared/junit.o

all: bin/testfleet bin/testfleet-worker bin/testfleet-upload

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -MMD -MP -c $< -o $@

build/libtfshared.a: $(SHARED_OBJ)
	@rm -f $@
	ar rcs $@ $^

bin/testfleet: $(PRODUCER_OBJ) build/libtfshared.a
	@mkdir -p bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(JUNIT_DL_OBJ): shared/junit.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DJUNIT_DLOPEN $(WARN) $(CFLAGS) -MMD -MP -c $< -o $@

# JUNIT_DL_OBJ comes before the archive, so the archive's junit.o is not
# linked.
bin/testfleet-worker: $(WORKER_OBJ) $(JUNIT_DL_OBJ) build/libtfshared.a
	@mkdir -p bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(WORKER_LIBS)

# The worker's uploader of large artifacts: libcurl lives here, not in the
# worker (uploader/main.c).
bin/testfleet-upload: build/uploader/main.o build/libtfshared.a
	@mkdir -p bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

build/shared/tests/%: shared/tests/%.c build/libtfshared.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -o $@ $^ $(LIBS) -lcmocka

build/shared/tests/test_junit_dl: shared/tests/test_junit.c $(JUNIT_DL_OBJ) build/libtfshared.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DJUNIT_DLOPEN $(WARN) $(CFLAGS) -o $@ $^ $(WORKER_LIBS) -lcmocka

build/producer/tests/%: producer/tests/%.c $(PRODUCER_LIB_OBJ) build/libtfshared.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iproducer $(WARN) $(CFLAGS) -o $@ $^ $(LIBS) -lcmocka

build/worker/tests/%: worker/tests/%.c $(WORKER_LIB_OBJ) build/libtfshared.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iworker $(WARN) $(CFLAGS) -o $@ $^ $(LIBS) -lcmocka

# Installs the Debian packages the build and tests need, when missing.
deps:
	@scripts/install-deps

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: all
	$(PYTHON) -m pytest -p no:cacheprovider -q integration-tests

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

# The main job on the example suite, in local mode.
demo: deps
	@$(MAKE) --no-print-directory all
	cd examples/pytest-suite && ../../bin/testfleet run -w 4 --junit ../../build/demo-junit.xml --json ../../build/demo-report.json tests

# Static checks and the unit tests under ASan+UBSan.
check: deps
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr -D_GNU_SOURCE -Ishared shared producer worker
	$(MAKE) --no-print-directory clean
	$(MAKE) --no-print-directory unit CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address,undefined"
	$(MAKE) --no-print-directory clean

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/testfleet/plugins
	install -m 755 bin/testfleet bin/testfleet-worker bin/testfleet-upload $(DESTDIR)$(PREFIX)/bin/
	install -m 644 worker/plugins/* $(DESTDIR)$(PREFIX)/share/testfleet/plugins/

clean:
	rm -rf build bin

.PHONY: all deps unit integration test demo check install clean

-include $(SHARED_OBJ:.o=.d) $(PRODUCER_OBJ:.o=.d) $(WORKER_OBJ:.o=.d) build/uploader/main.d
-include $(JUNIT_DL_OBJ:.o=.d)

# libFuzzer targets, one per decoder of outside input. Each links the
# sources it exercises directly, so they are instrumented too.
FUZZ_SECONDS ?= 60
FUZZ_CC := clang -g -O1 -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS := proto junit config events collected
fuzz_proto_SRC := shared/proto.c shared/xmalloc.c
fuzz_junit_SRC := shared/junit.c shared/buf.c shared/xmalloc.c
fuzz_config_SRC := shared/config.c shared/buf.c shared/xmalloc.c
fuzz_events_SRC := worker/events.c worker/capture.c shared/utf8.c shared/proto.c shared/buf.c shared/xmalloc.c
fuzz_collected_SRC := producer/collected.c producer/history.c producer/shard.c shared/pwid.c shared/keys.c producer/discover.c producer/proc.c shared/redisconn.c shared/redisurl.c shared/backoff.c shared/sha1.c shared/buf.c shared/xmalloc.c shared/log.c

build/fuzz_%: fuzz/fuzz_%.c $(wildcard shared/*.h worker/*.h producer/*.h) $(wildcard shared/*.c worker/*.c producer/*.c)
	@mkdir -p build
	$(FUZZ_CC) $(CPPFLAGS) -Iworker -Iproducer $(WARN) -o $@ $< $(fuzz_$*_SRC) $(LIBS)

# make fuzz: every target for FUZZ_SECONDS each, on a copy of its corpus.
fuzz: $(FUZZ_TARGETS:%=build/fuzz_%)
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz-corpus-$$t; \
		dict=""; [ -f fuzz/$$t.dict ] && dict="-dict=fuzz/$$t.dict"; \
		seeds=""; [ -d fuzz/corpus/$$t ] && seeds="fuzz/corpus/$$t"; \
		echo "== fuzz_$$t"; \
		build/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 $$dict build/fuzz-corpus-$$t $$seeds; \
	done

.PHONY: fuzz

# make bench: a clean optimised build, then the benchmark figures
# (bench/README.md), printed and appended to bench/results/<date>.txt.
# -B recompiles every object with BENCH_OPT, as after `make clean`, without
# a moment when bin/ is missing for whoever else uses this tree.
BENCH_OPT ?= -O2
BENCH_TOOLS := build/bench/tfbench build/bench/stamp build/bench/libhwm.so

build/bench/tfbench: bench/tfbench.c $(PRODUCER_LIB_OBJ) build/libtfshared.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Iproducer $(WARN) $(CFLAGS) -o $@ $^ $(LIBS)

# Static, so the loader does not stand between exec and its clock.
build/bench/stamp: bench/stamp.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) -static -o $@ $<

build/bench/libhwm.so: bench/hwm.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -D_GNU_SOURCE $(CFLAGS) -fPIC -shared -o $@ $<

bench-tools: $(BENCH_TOOLS)

bench: deps
	@$(MAKE) --no-print-directory -B all bench-tools OPT="$(BENCH_OPT)" CFLAGS="$(BENCH_OPT) -g"
	$(PYTHON) bench/run

.PHONY: bench bench-tools
