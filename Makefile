# lpar-cmm: `make run` boots the kernel under QEMU, `make test` runs every test.
# Both install what is missing first (apt packages, the rustup target), idempotently.

# Two images from one source: big-endian (ELFv1, GNU ld) and little-endian
# (ELFv2, rust-lld); docs/little-endian.md. ENDIAN=le makes `run` boot the latter.
TARGET      := powerpc64-unknown-linux-gnu
TARGET_LE   := powerpc64le-unknown-linux-gnu
KERNEL_BE   := target/$(TARGET)/release/lpar-cmm
KERNEL_LE   := target/$(TARGET_LE)/release/lpar-cmm
ENDIAN      ?= be
ifeq ($(ENDIAN),be)
KERNEL      := $(KERNEL_BE)
else ifeq ($(ENDIAN),le)
KERNEL      := $(KERNEL_LE)
else
$(error ENDIAN must be be or le)
endif
BOOTROM     := target/boot/bootrom.bin
MACHINE     := pseries,cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off
MEM         ?= 512M
APPEND      ?=
QEMU_EXTRA  ?=
FIRMWARE    ?= bios
APT_PACKAGES := qemu-system-ppc binutils-powerpc64-linux-gnu device-tree-compiler
TOOLCHAIN   := $(shell sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export LPAR_CMM_KERNEL    := $(CURDIR)/$(KERNEL_BE)
export LPAR_CMM_KERNEL_LE := $(CURDIR)/$(KERNEL_LE)
export LPAR_CMM_BOOTROM := $(CURDIR)/$(BOOTROM)

# QEMU from Debian bookworm-backports, fetched privately (`make qemu-bpo`) for the
# test that boots `-smp 4,threads=2`, which bookworm's QEMU 7.2 refuses under TCG.
DEBIAN_MIRROR ?= http://deb.debian.org/debian
QEMU_BPO_DIR  := target/qemu-bpo
export LPAR_CMM_QEMU_BPO := $(CURDIR)/$(QEMU_BPO_DIR)/root/usr/bin/qemu-system-ppc64
export LPAR_CMM_QEMU_BPO_DATA := $(CURDIR)/$(QEMU_BPO_DIR)/root/usr/share/qemu

ifeq ($(FIRMWARE),bios)
FIRMWARE_ARGS := -bios $(BOOTROM)
else ifeq ($(FIRMWARE),slof)
FIRMWARE_ARGS :=
else ifeq ($(FIRMWARE),vof)
MACHINE := $(MACHINE),x-vof=on
FIRMWARE_ARGS :=
else
$(error FIRMWARE must be bios, slof or vof)
endif

.PHONY: all setup qemu-bpo kernel run test test-le host-test coverage package lint fmt bench bench-linux trace amsstat pool fuzz fuzz-corpus soak clean

all: kernel

setup:
	@missing=""; \
	command -v qemu-system-ppc64 >/dev/null || missing="$$missing qemu-system-ppc"; \
	command -v powerpc64-linux-gnu-ld >/dev/null || missing="$$missing binutils-powerpc64-linux-gnu"; \
	command -v dtc >/dev/null || missing="$$missing device-tree-compiler"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi
	@rustup toolchain list | grep -q '^$(TOOLCHAIN)-' || rustup toolchain install $(TOOLCHAIN) --profile minimal
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)
	@rustup target list --installed | grep -qx $(TARGET_LE) || rustup target add $(TARGET_LE)
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

# qemu-system-ppc and qemu-system-data from bookworm-backports, extracted into
# target/qemu-bpo/root (apt with private state there; missing runtime libraries
# installed like the packages above). Fails, and so fails `make test`, when it
# cannot fetch.
qemu-bpo: setup
	@sh scripts/fetch-qemu-bpo.sh $(QEMU_BPO_DIR) $(DEBIAN_MIRROR)

# The boot ROM (boot/bootrom.S): 0x100 bytes of padding, then `ba 0x400000` (r3
# still holds the device tree address QEMU put there).
$(BOOTROM): boot/bootrom.S | setup
	@mkdir -p $(dir $@)
	powerpc64-linux-gnu-as -o $(@:.bin=.o) $<
	powerpc64-linux-gnu-objcopy -O binary -j .text $(@:.bin=.o) $@

kernel: setup $(BOOTROM)
	cargo build -p kernel --target $(TARGET) --release
	cargo build -p kernel --target $(TARGET_LE) --release

run: kernel
	qemu-system-ppc64 -M $(MACHINE) -m $(MEM) -nographic -nodefaults \
	  -chardev stdio,id=con,mux=on,signal=off -serial chardev:con -mon chardev=con \
	  -action panic=exit-failure $(FIRMWARE_ARGS) -kernel $(KERNEL) \
	  $(if $(APPEND),-append "$(APPEND)") $(QEMU_EXTRA)

host-test: setup
	cargo test --workspace --exclude lpar-cmm-tests

test: kernel lint qemu-bpo
	tests/suites.sh "$(LE_SUITE)" "$(LE_SKIP)" "$(BESIDE)"

# `make test` runs every test of the workspace and, side by side with it
# (tests/suites.sh), the little-endian suite: the QEMU tests of every subsystem,
# booting the little-endian image (boot on -bios/VOF/SLOF, -smp 4 on each, balloon, VIO, 4G
# with a 256M RMA,
# virtio-balloon host mode, statistics and free page reporting, the real amsstat,
# the pool manager reading the guests' statistics). Three tests stay big-endian only, to keep
# `make test` within 10 minutes on 2 cores: the 4G workload on all three boot
# paths (the little-endian suite runs it on -bios, and boots every path), the
# three-guest pool scenario (the suite starts and follows guests with the pool
# manager) and the SMT boot on the backports QEMU (the suite boots -smp 4).
LE_SUITE := boot of_boot smp balloon vio lpar virtio_balloon reporting pool amsstat
# Big-endian test binaries the second lane runs after the little-endian suite.
BESIDE   := pool
LE_SKIP  := a_256m_rma_on_4g_boots_on_every_path three_guests_share_one_pool smt_threads_on_newer_qemu
test-le: kernel
	LPAR_CMM_ENDIAN=le cargo test -p lpar-cmm-tests $(addprefix --test ,$(LE_SUITE)) \
	  -- $(addprefix --skip ,$(LE_SKIP))

# The share of the workspace's non-test lines that the host tests run: per file for
# everything built on the host (cargo-llvm-cov; installed with cargo and rustup when
# missing), then the total with the target-only code (kernel/src/glue/, the kernel's
# main.rs, hcall's sc 1) counted as not reached (tests/src/bin/coverage.rs). Test
# files, the fuzz entries and the QEMU harness are left out. Needs the kernel: the
# pool manager's tests (pool/tests/signals.rs) boot guests under QEMU.
COVERAGE_IGNORE := (/tests/|/tests\.rs$$|_tests\.rs$$|/benches/|/fake\.rs$$|/fuzz/)
coverage: kernel
	@command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
	@rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools-preview
	cargo llvm-cov --workspace --exclude lpar-cmm-tests --ignore-filename-regex '$(COVERAGE_IGNORE)'
	cargo llvm-cov report --json --summary-only --ignore-filename-regex '$(COVERAGE_IGNORE)' \
	  --output-path target/coverage-summary.json
	cargo run -q -p lpar-cmm-tests --bin coverage -- target/coverage-summary.json

# The libraries a porting developer can take, packaged and built from their
# packages (cargo checks each against the others through a local registry).
LIBRARIES := hcall lpar-units powervm-sim cmm
package: setup
	cargo package $(addprefix -p ,$(LIBRARIES))

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p kernel --target $(TARGET) --release -- -D warnings
	cargo clippy -p kernel --target $(TARGET_LE) --release -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -q $(addprefix -p ,$(LIBRARIES))

fmt:
	cargo fmt --all

# Coverage-guided fuzzing on stable Rust (cargo fuzz, no sanitizer; installed with
# cargo when missing): every target in fuzz/fuzz_targets/ for FUZZ_SECONDS each,
# FUZZ_JOBS at a time (default one per core; FUZZ_TARGETS="fdt qmp" for some),
# then a table of executions, exec/s, coverage and crashes with the host's load.
# Not part of make test, which replays the committed corpus instead.
FUZZ_SECONDS ?= 180
FUZZ_JOBS ?= $(shell nproc)
fuzz: setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) fuzz/run.sh

# Folds what the last make fuzz found into the committed corpus, minimised.
fuzz-corpus:
	fuzz/minimize.sh

# A seeded random console storm against one guest with hcall failures injected
# (tests/src/bin/soak.rs); SOAK_COMMANDS (default 100000), SOAK_SEED. Not part of
# make test.
soak: kernel
	cargo run -q -p lpar-cmm-tests --bin soak --release

# In-guest benchmarks under QEMU, then the host benchmark of the balloon step.
# lpar-cmm next to Linux on the same QEMU (not part of `make test`): fetches the
# Debian ppc64el kernel and busybox-static with apt (cached in target/bench-linux/).
bench-linux: kernel
	cargo run -q -p lpar-cmm-tests --bin bench_linux --release

bench: kernel
	cargo run -q -p lpar-cmm-tests --bin bench --release
	cargo bench -q -p cmm --bench step

# make trace SCENARIO=<name>: target/trace/<name>.svg and .csv (tests/scenarios/).
SCENARIO ?= inflate_deflate
trace: kernel
	cargo run -q -p lpar-cmm-tests --bin trace -- $(SCENARIO)

# The real powerpc-utils amsstat on a tree rebuilt from the kernel's output.
amsstat: kernel
	cargo run -q -p lpar-cmm-tests --bin amsstat

# The host pool manager's demo (pool/configs/demo.toml): three guests share a pool
# smaller than their logical memory; writes target/pool/pool.csv and pool.svg.
pool: kernel
	cargo run -q -p lpar-pool --release -- run pool/configs/demo.toml --out target/pool

clean:
	cargo clean
