# modelload.h — build the tools, run the tests, the demo, the benchmarks, the fuzzer.
#   make          build mload-inspect
#   make test     the whole test suite (tests/run.sh); ends with "N passed, N failed, N skipped"
#   make demo     stream a model 4x the device budget through the offload manager
#   make examples build the short examples (examples/*.c) into build/examples/
#   make bench    benchmarks (tests/bench/), ratios against baselines measured in the same run
#                 (bench_inspect.sh: the inspector's listing against cat)
#   make fuzz     libFuzzer on the parser, index.json, rules and PyTorch checkpoints for
#                 FUZZ_SECONDS each (default 60); needs clang
#   make ptx      the CUDA conversion kernel as PTX, checked by ptxas (needs the CUDA toolkit)
#   make cuda-check  the CUDA back end built with gcc/clang/nvcc and run without a GPU
#   make demo-cuda   the demo on a GPU; tests/gpu/run.sh: every GPU check and B8
CC      ?= cc
CFLAGS  ?= -O2
STRICT  := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror
BUILD   := build
FUZZ_SECONDS ?= 60

.PHONY: all test demo demo-cuda examples bench fuzz clean ptx ptx-embed cuda-check

all: mload-inspect mload-convert mload-demo

mload-inspect: examples/tools/inspect.c modelload.h
	$(CC) -std=c99 $(CFLAGS) $(STRICT) -I. examples/tools/inspect.c -o $@ -pthread

mload-convert: examples/tools/convert.c modelload.h
	$(CC) -std=c99 $(CFLAGS) $(STRICT) -I. examples/tools/convert.c -o $@ -pthread

$(BUILD)/gen_checkpoint: tests/gen_checkpoint.c
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O2 -Wall -Wextra $< -o $@

test:
	bash tests/run.sh

# the CUDA back end's conversion kernel (tests/gpu/cast_kernel.cu) as PTX for
# old drivers, checked by ptxas for sm_75 and sm_90; needs the CUDA toolkit
ptx:
	@mkdir -p $(BUILD)
	bash tests/gpu/ptx.sh $(BUILD)/cast_kernel.ptx

# ... embedded in modelload.h (after editing tests/gpu/cast_kernel.cu)
ptx-embed:
	bash tests/gpu/embed_ptx.sh

# the CUDA back end where a CUDA toolkit is installed, GPU or not: gcc, g++,
# clang and nvcc builds with MODELLOAD_CUDA, the embedded PTX, the run
# without a GPU (CUDA_HOME, default /usr/local/cuda)
CUDA_HOME ?= /usr/local/cuda
cuda-check:
	CUDA_HOME=$(CUDA_HOME) bash tests/gpu/cuda_check.sh

# the demo on the GPU (needs the toolkit and a GPU)
demo-cuda:
	@mkdir -p $(BUILD)
	$(CC) -std=c11 $(CFLAGS) $(STRICT) -DMODELLOAD_CUDA -isystem $(CUDA_HOME)/include -I. examples/tools/demo.c -o $(BUILD)/mload-demo-cuda \
	    -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -pthread -lm
	./$(BUILD)/mload-demo-cuda --cuda

mload-demo: examples/tools/demo.c modelload.h
	$(CC) -std=c99 $(CFLAGS) $(STRICT) -I. examples/tools/demo.c -o $@ -pthread -lm

# a model 4x the device budget, streamed layer by layer (see examples/tools/demo.c)
demo: mload-demo
	./mload-demo

EXAMPLES := list read_tensor bind_model stream_layers custom_source

examples: $(EXAMPLES:%=$(BUILD)/examples/%)

$(BUILD)/examples/%: examples/%.c modelload.h
	@mkdir -p $(BUILD)/examples
	$(CC) -std=c99 $(CFLAGS) $(STRICT) -I. $< -o $@ -pthread

$(BUILD)/bench_parse: tests/bench/bench_parse.c modelload.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O2 $(STRICT) -I. $< -o $@

$(BUILD)/bench_load: tests/bench/bench_load.c modelload.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O2 $(STRICT) -I. $< -o $@ -pthread

# MLOAD_BENCH_MB sets the size of the generated model for the load benchmarks
# (B4 needs root to drop the page cache; it is skipped otherwise)
MLOAD_BENCH_MB ?= 512
$(BUILD)/bench_offload: tests/bench/bench_offload.c modelload.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O2 $(STRICT) -I. $< -o $@ -pthread

$(BUILD)/bench_torch: tests/bench/bench_torch.c modelload.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O2 $(STRICT) -I. $< -o $@ -pthread

$(BUILD)/bench_lora: tests/bench/bench_lora.c modelload.h
	@mkdir -p $(BUILD)
	$(CC) -std=c99 -O2 $(STRICT) -I. $< -o $@ -pthread

bench: $(BUILD)/bench_parse $(BUILD)/bench_load $(BUILD)/bench_offload $(BUILD)/bench_torch $(BUILD)/bench_lora mload-inspect
	./$(BUILD)/bench_parse
	MLOAD_BENCH_MB=$(MLOAD_BENCH_MB) ./$(BUILD)/bench_load
	./$(BUILD)/bench_offload
	./$(BUILD)/bench_torch
	./$(BUILD)/bench_lora
	bash tests/bench/bench_inspect.sh ./mload-inspect

$(BUILD)/fuzz_parse: tests/fuzz_parse.c modelload.h
	@mkdir -p $(BUILD)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DMLOAD_LIBFUZZER -I. $< -o $@

$(BUILD)/fuzz_index: tests/fuzz_index.c modelload.h
	@mkdir -p $(BUILD)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DMLOAD_LIBFUZZER -I. $< -o $@ -pthread

$(BUILD)/fuzz_torch: tests/fuzz_torch.c modelload.h
	@mkdir -p $(BUILD)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DMLOAD_LIBFUZZER -I. $< -o $@ -pthread

$(BUILD)/fuzz_rules: tests/fuzz_rules.c modelload.h
	@mkdir -p $(BUILD)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DMLOAD_LIBFUZZER -I. $< -o $@ -pthread

# Each target runs FUZZ_SECONDS on a scratch copy of its corpus; a crash
# lands in build/fuzz_artifacts/. Copy it into tests/fuzz_corpus/ (or
# tests/fuzz_index_corpus/, tests/fuzz_rules_corpus/, tests/fuzz_torch_corpus/)
# once fixed: `make test` replays every corpus.
fuzz: $(BUILD)/fuzz_parse $(BUILD)/fuzz_index $(BUILD)/fuzz_rules $(BUILD)/fuzz_torch
	@mkdir -p $(BUILD)/fuzz_work $(BUILD)/fuzz_index_work $(BUILD)/fuzz_rules_work $(BUILD)/fuzz_torch_work $(BUILD)/fuzz_artifacts
	cp tests/fuzz_torch_corpus/* $(BUILD)/fuzz_torch_work/
	cp tests/fuzz_corpus/* $(BUILD)/fuzz_work/
	cp tests/fuzz_index_corpus/* $(BUILD)/fuzz_index_work/
	cp tests/fuzz_rules_corpus/* $(BUILD)/fuzz_rules_work/
	./$(BUILD)/fuzz_parse $(BUILD)/fuzz_work -dict=tests/fuzz_parse.dict -max_len=8192 \
	    -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/fuzz_artifacts/ -print_final_stats=1
	./$(BUILD)/fuzz_index $(BUILD)/fuzz_index_work -dict=tests/fuzz_parse.dict -max_len=2048 \
	    -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/fuzz_artifacts/idx- -print_final_stats=1
	./$(BUILD)/fuzz_rules $(BUILD)/fuzz_rules_work -dict=tests/fuzz_rules.dict -max_len=1024 \
	    -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/fuzz_artifacts/rules- -print_final_stats=1
	./$(BUILD)/fuzz_torch $(BUILD)/fuzz_torch_work -dict=tests/fuzz_torch.dict -max_len=8192 \
	    -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/fuzz_artifacts/torch- -print_final_stats=1

clean:
	rm -rf $(BUILD) mload-inspect mload-convert mload-demo
