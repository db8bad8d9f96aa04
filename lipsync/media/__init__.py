"""Media in and out: video and image frames, frames in memory, speech decoding, and the H.264 + AAC writer."""
