# xero-sync: a thin front to CMake and the scripts. See README.md.
#   make        build everything (into build/)
#   make test   install what is missing, then build and run every test twice: plainly, and
#               under AddressSanitizer + UndefinedBehaviorSanitizer (into build-asan/)
#   make demo   install what is missing, build, and run the engine locally end to end
#   make lint   check every C file against .clang-format

BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= 2
CMAKE_FLAGS ?=

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find lib proto engine services sim tests bench -name '*.[ch]')

.PHONY: all deps build build-asan test test-plain test-asan demo lint clean config-doc

all: build

deps:
	@./scripts/install-deps

build: deps
	cmake -S . -B $(BUILD) -DXS_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DXS_WERROR=ON -DXS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD_ASAN) -j$(JOBS)

test-plain: build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure

test-asan: build-asan
	cd $(BUILD_ASAN) && ctest -j$(JOBS) --output-on-failure

test: lint test-plain test-asan
	@echo "make test: every test passed, plainly and under ASan+UBSan"

demo: build
	./scripts/demo $(BUILD)

lint:
	@command -v clang-format >/dev/null || ./scripts/install-deps
	@clang-format --dry-run --Werror $(C_FILES) && echo "lint: every C file matches .clang-format"

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

# Regenerate the variable table in docs/CONFIG.md from lib/xs/config_vars.c.
config-doc: build
	$(BUILD)/tests/config_doc_test --write docs/CONFIG.md
