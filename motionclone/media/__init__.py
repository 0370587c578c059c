"""Video in and out through ffmpeg, and live preview strips."""
