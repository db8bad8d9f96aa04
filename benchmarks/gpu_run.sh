#!/usr/bin/env bash
# One GPU session's measurements (issue 17), run from the repository root on a lent GPU machine:
# installs the wheels in .whl/ (the image lacks PyAV, librosa, face-alignment, spandrel, ...) into /tmp/site, then runs
# each benchmark under its own time limit and writes its output to $OUT/<name>.log, with $OUT/summary.log collecting
# the headline lines. Every step runs even when an earlier one failed; the exit status is the number of failed steps.
#
#   OUT=/tmp/gpuout bash benchmarks/gpu_run.sh                       # the full run (about 6 minutes on an H100/H200)
#   OUT=/tmp/gpuout GPU_RUN_SMALL=1 bash benchmarks/gpu_run.sh       # tiny sizes: checks the script end to end on a CPU
#
# What travels to the GPU machine with the working tree: .whl/ (Python 3.12 wheels, 39 MB), the reference checkout
# (WAV2LIP_REF, 2.3 MB) and .cache/ComfyUI (a ComfyUI source folder without .git or models, 16 MB): about 57 MB.
#
# Environment:
#   OUT                 the folder the logs go to (required)
#   GPU_RUN_STEPS       the steps to run, in that order, e.g. "pipeline startup" (default: all)
#   GPU_RUN_SMALL=1     tiny sizes
#   GPU_RUN_DEADLINE    seconds for the whole run: each step's limit is cut to what is left, and a step with under 10 s
#                       left is skipped (default: none)
#   GPU_RUN_PROFILE=1   also a yappi profile of each pipeline setting's threads, untimed (needs yappi among the wheels)
#   GPU_RUN_NODE_MODES  the paste modes of the node-path benchmark (default "box,mouth mask")
#   GPU_RUN_RESTORE_COMPILE=1  bench_restore also times the restorer through torch.compile (minutes of compiling)
#   GPU_RUN_WHEELS      the wheels to install (default .whl); GPU_RUN_SITE where to (default /tmp/site)
#   WAV2LIP_REF         a copy of Rudrabha/Wav2Lip's inference.py, audio.py, hparams.py, models/, face_detection/
#                       (default .cache/Wav2Lip; the reference comparison is skipped without it)
#   COMFYUI_SRC         a ComfyUI source folder for the node-path benchmark under ComfyUI's own model management
#                       (default .cache/ComfyUI; skipped without it; its Python requirements must be importable)
#   PYTHON              default python3
set -u
: "${OUT:?set OUT to the folder the logs go to}"
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
WHEELS=${GPU_RUN_WHEELS:-.whl}
SITE=${GPU_RUN_SITE:-/tmp/site}
REF=${WAV2LIP_REF:-.cache/Wav2Lip}
COMFY=${COMFYUI_SRC:-.cache/ComfyUI}
SMALL=${GPU_RUN_SMALL:-0}
DEADLINE=${GPU_RUN_DEADLINE:-0}
NODE_MODES=${GPU_RUN_NODE_MODES:-box,mouth mask}  # one quoted argument: a mode name holds a space
FAILED=0
STARTED=$(date +%s)

if [ "$SMALL" = 1 ]; then
  ENC="--frames 20 --size 320x240 --repeats 1"
  PIPE="--frames 30 --size 320x240 --settings fixed-box fixed-box-mask default --no-generator-bench"
  RESTORE="--repeats 1 --cpu-batch 1 --cuda-batches 1"
  SYNC="--frames 50 --batch-size 16"
  START="--seconds 1 --size 320x240 --repeats 1"
  VSREF="--seconds 1 --size 320x240 --pairs 1"
  BATCH="--clips 2 --seconds 1 --size 320x240"
  NODES="--frames 8 --width 320 --height 240 --repeats 1 --detector s3fd --restore"
  LIMIT=600
else
  ENC="--frames 250 --size 1280x720 --repeats 2"
  PIPE="--frames 1500 --size 1280x720 --settings fixed-box fixed-box-mask default"
  RESTORE="--repeats 3 --cpu-batch 0 --cuda-batches 1 8"
  SYNC="--frames 1500 --batch-size 64"
  START="--seconds 10 --size 1280x720 --repeats 2"
  VSREF="--seconds 10 --size 1280x720 --pairs 2"
  BATCH="--clips 8 --seconds 10 --size 1280x720"
  NODES="--frames 250 --repeats 2 --detector s3fd --restore --cpu-blends"
  LIMIT=1
fi

# step NAME SECONDS COMMAND...: run with a time limit (scaled by LIMIT on a CPU), output to $OUT/NAME.log
step() {
  local name=$1 seconds=$2
  shift 2
  [ "$SMALL" = 1 ] && seconds=$LIMIT
  if [ "$DEADLINE" -gt 0 ]; then
    local left=$((DEADLINE - $(date +%s) + STARTED))
    if [ $left -lt 10 ]; then
      echo "=== $name skipped: ${left}s left of the ${DEADLINE}s deadline" | tee -a "$OUT/summary.log"
      FAILED=$((FAILED + 1))
      return 0
    fi
    [ $left -lt "$seconds" ] && seconds=$left
  fi
  echo "=== $name (limit ${seconds}s, $(($(date +%s) - STARTED))s into the run): $*" | tee -a "$OUT/summary.log"
  local begin=$(date +%s)
  timeout --kill-after=10 "$seconds" "$@" >"$OUT/$name.log" 2>&1
  local status=$?
  echo "--- $name: exit $status after $(($(date +%s) - begin))s" | tee -a "$OUT/summary.log"
  [ $status -ne 0 ] && FAILED=$((FAILED + 1)) && tail -n 15 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$OUT/summary.log"
  return 0
}

# headline NAME PATTERN: copy a log's matching lines into the summary
headline() { grep -E "$2" "$OUT/$1.log" 2>/dev/null | sed "s/^/  [$1] /" | tee -a "$OUT/summary.log"; }

: >"$OUT/summary.log"
if command -v nvidia-smi >/dev/null; then
  step nvidia-smi 10 nvidia-smi
  headline nvidia-smi "NVIDIA-SMI|MiB"
  # NVENC and NVDEC need the driver's video libraries in the container (NVIDIA_DRIVER_CAPABILITIES including "video")
  step video-driver 10 bash -c 'echo "NVIDIA_DRIVER_CAPABILITIES=${NVIDIA_DRIVER_CAPABILITIES:-unset}"; ldconfig -p | grep -E "libnvidia-encode|libnvcuvid" || echo "no libnvidia-encode / libnvcuvid"'
  headline video-driver "."
fi
if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  step install 60 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
step versions 40 "$PYTHON" -c "
import os, sys, numpy, torch, av, cv2, librosa, face_alignment, spandrel
print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else '-', '| cores', os.cpu_count(), '| torch threads', torch.get_num_threads())
print('numpy', numpy.__version__, '| PyAV', av.__version__, '| OpenCV', cv2.__version__, '| librosa', librosa.__version__,
      '| face-alignment', face_alignment.__version__, '| spandrel', spandrel.__version__)
print('h264_nvenc in this PyAV:', 'h264_nvenc' in av.codecs_available)
"
headline versions "."

run_pipeline() {
  PROFILE=""
  [ "${GPU_RUN_PROFILE:-0}" = 1 ] && PROFILE="--profile $OUT"
  step pipeline 200 "$PYTHON" -m benchmarks.bench_pipeline $PIPE $PROFILE
  headline pipeline "frames/s|FLOP floor|optimised batch 128"
}
run_vs_reference() {
  if [ -f "$REF/inference.py" ]; then
    MUX=skip; command -v ffmpeg >/dev/null && MUX=run  # the reference's final mux needs the ffmpeg program
    step vs_reference 110 "$PYTHON" -m benchmarks.bench_vs_reference --reference "$REF" --reference-mux "$MUX" $VSREF
    headline vs_reference "pair|median"
  else
    echo "=== vs_reference skipped: no $REF/inference.py (copy Rudrabha/Wav2Lip there and carry it)" | tee -a "$OUT/summary.log"
  fi
}
run_nodes() {
  if [ -f "$COMFY/main.py" ]; then
    step nodes 180 env PYTHONPATH="$COMFY${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m benchmarks.bench_nodes $NODES --modes "$NODE_MODES"
    headline nodes "==|frames/s|peak RSS"
  else
    echo "=== nodes skipped: no $COMFY/main.py (copy a ComfyUI source folder there and carry it)" | tee -a "$OUT/summary.log"
  fi
}
run_restore() {
  if [ "${GPU_RUN_RESTORE_COMPILE:-0}" = 1 ]; then
    step restore 300 "$PYTHON" -m benchmarks.bench_restore $RESTORE --compile
  else
    step restore 90 "$PYTHON" -m benchmarks.bench_restore $RESTORE
  fi
  headline restore "ms/face|difference"
}
run_cuda_tests() {
  step cuda_tests 120 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_engine.py tests/test_restore_warp.py tests/test_restore.py tests/test_faces.py tests/test_video_writer.py \
    tests/test_gpen.py::test_cuda_runs_gpen_in_bfloat16_close_to_float32
  headline cuda_tests "passed|failed"
}
run_sync_score() {
  step sync_score 45 "$PYTHON" -m benchmarks.bench_sync_score $SYNC
  headline sync_score '"syncnet|windows_per_second|largest|device'
}
run_encode() {
  step encode 45 "$PYTHON" -m benchmarks.bench_encode $ENC
  headline encode "ms/frame|h264_nvenc:"
}
run_startup() {
  step startup 90 "$PYTHON" -m benchmarks.bench_startup $START
  headline startup "s \(fastest|--help|imports"
}
run_batch() {
  step batch 90 "$PYTHON" -m benchmarks.bench_batch --runners local $BATCH
  headline batch "jobs/hour"
}

# The steps run in the order GPU_RUN_STEPS names them (default: this order).
ALL_STEPS="pipeline vs_reference nodes restore cuda_tests sync_score encode startup batch"
for name in ${GPU_RUN_STEPS:-$ALL_STEPS}; do
  if declare -F "run_$name" >/dev/null; then
    "run_$name"
  else
    echo "=== unknown step $name (steps: $ALL_STEPS)" | tee -a "$OUT/summary.log"
    FAILED=$((FAILED + 1))
  fi
done
echo "=== done in $(($(date +%s) - STARTED))s, $FAILED step(s) failed" | tee -a "$OUT/summary.log"
exit $FAILED
