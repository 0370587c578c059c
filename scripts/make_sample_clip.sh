#!/usr/bin/env bash
# Regenerates motionclone/assets/sample.mp4 from ffmpeg test sources (run inside the venv).
set -euo pipefail
E=$(python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
# A 3-second 24 fps clip: a camera pan across a colourful test pattern with a moving object.
$E -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=24:duration=3" -f lavfi -i "mandelbrot=size=960x360:rate=24" \
  -filter_complex "[1:v]crop=640:360:'t*100':0[bg];[bg][0:v]blend=all_mode=overlay:all_opacity=0.35,scale=256:144" \
  -t 3 -c:v libx264 -pix_fmt yuv420p -crf 30 -movflags +faststart motionclone/assets/sample.mp4

