"""Audio to mel windows: ComfyUI AUDIO -> the 16-column mel window of every output frame."""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io

from ..lipsync.defaults import DEFAULT_FPS
from ..lipsync.media.audio import to_model_rate
from ..lipsync.speech.mel import melspectrogram
from ..lipsync.speech.timeline import LENGTH_MODES, LOOP, SpeechWindows
from .sockets import CATEGORY, SpeechWindowsSocket

logger = logging.getLogger(__name__)


def fit_waveform(audio: dict, seconds: float) -> dict:
    """A new AUDIO of exactly ``seconds`` (trimmed, or padded with silence); the input is not changed."""
    waveform, rate = audio["waveform"], int(audio["sample_rate"])
    samples = round(seconds * rate)
    fitted = waveform[..., :samples]
    if fitted.shape[-1] < samples:
        fitted = torch.nn.functional.pad(fitted, (0, samples - fitted.shape[-1]))
    return {"waveform": fitted.clone(), "sample_rate": rate}


class AudioToMelWindows(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LipSyncAudioToMel",
            display_name="Audio to Mel Windows",
            category=CATEGORY,
            description="Turns speech into Wav2Lip's per-frame mel windows and matches its length to the video.",
            inputs=[
                io.Audio.Input("audio", tooltip="The speech to lip-sync to (any sample rate; channels are mixed to mono; "
                               "of a batch of clips the first is used)."),
                io.Float.Input("fps", default=DEFAULT_FPS, min=1.0, max=240.0, step=0.001,
                               tooltip="Frame rate of the video (GetVideoComponents gives it)."),
                io.Combo.Input("length_mode", options=list(LENGTH_MODES), default=LOOP,
                               tooltip="loop / ping-pong video: the speech sets the length and the video repeats (loop is the "
                                       "reference); trim to shorter: stop at whichever ends first; fit audio to video: the "
                                       "video sets the length and the speech is cut or padded with silence."),
                io.Image.Input("frames", optional=True,
                               tooltip="The video frames, to match lengths. Without them the speech sets the length."),
            ],
            outputs=[
                SpeechWindowsSocket.Output(display_name="mel_windows"),
                io.Audio.Output(display_name="audio", tooltip="The speech cut or padded to the output length, for muxing."),
                io.Int.Output(display_name="frame_count", tooltip="Number of output frames."),
            ],
        )  # fmt: skip

    @classmethod
    def execute(cls, audio: dict, fps: float, length_mode: str, frames: torch.Tensor | None = None) -> io.NodeOutput:
        windows, matched = speech_windows(audio, fps, length_mode, 0 if frames is None else int(frames.shape[0]))
        return io.NodeOutput(windows, matched, windows.count)


def speech_windows(audio: dict, fps: float, length_mode: str, video_frames: int) -> tuple[SpeechWindows, dict]:
    """An AUDIO's mel windows for ``video_frames`` frames (0: the speech sets the length), and the AUDIO cut or
    padded to the output length."""
    waveform = audio["waveform"]
    if waveform.ndim != 3 or waveform.shape[-1] == 0:
        raise ValueError("The AUDIO input is empty; connect a loaded speech track.")
    if waveform.shape[0] > 1:  # muxers (CreateVideo, Video Combine) expect one clip: keep the one lip-synced to
        logger.warning("AUDIO holds a batch of %d clips; using the first", waveform.shape[0])
        audio = {**audio, "waveform": waveform[:1]}
    samples = waveform[0].detach().to("cpu", torch.float32).numpy()
    mel = melspectrogram(to_model_rate(samples, int(audio["sample_rate"])))
    windows = SpeechWindows.match(mel, fps, video_frames, length_mode)
    return windows, fit_waveform(audio, windows.seconds)
