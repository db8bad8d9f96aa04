"""Point API prompts at the test media and models, and check the videos they save."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from integration.media import FPS, FRAMES, SHORT_FRAMES, Media, read_image, read_video
from integration.workflow_api import default_inputs

# Graphs with these nodes run on the short inputs (restoration costs seconds per face on a CPU).
SLOW_NODES = {"LipSyncRestoreFaces", "LipSyncLoadFaceRestorer"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".avi"}

# Pixels farther than this from the face box must come through unchanged (up to video coding noise).
FAR_MARGIN = 120


def cascade_face_box(frames: np.ndarray) -> tuple[int, int, int, int]:
    """The median box (x1, y1, x2, y2) that OpenCV's frontal-face cascade finds in the frames, the detector the graphs use.

    On the real clip, whose face is tilted down, the cascade finds a playing card on the wall rather than the face;
    the paste must then land there, which is what the pixel checks follow.
    """
    cascade = cv2.CascadeClassifier(f"{cv2.data.haarcascades}haarcascade_frontalface_default.xml")
    boxes = []
    for frame in frames:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        side = int(min(grey.shape) * 0.1)
        found = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
        if len(found):
            x, y, w, h = max(found, key=lambda box: box[2] * box[3])
            boxes.append((x, y, x + w, y + h))
    assert boxes, "OpenCV's cascade finds no face in the test media"
    x1, y1, x2, y2 = np.median(np.array(boxes), axis=0).astype(int)
    return int(x1), int(y1), int(x2), int(y2)


def opencv_detector(object_info: dict) -> str:
    """The Load Face Detector option for OpenCV's cascade (random S3FD weights would find no face)."""
    options = object_info["LipSyncLoadFaceDetector"]["input"]["required"]["detector"][1]["options"]
    return next(option for option in options if option.startswith("opencv"))


def use_test_media(prompt: dict, media: Media, object_info: dict) -> int:
    """Point the graph's loaders at the uploaded media (the OpenCV detector instead of S3FD); returns the frame count to expect."""
    short = any(node["class_type"] in SLOW_NODES for node in prompt.values())
    video, speech, frames = (media.short_video, media.short_speech, SHORT_FRAMES) if short else (media.video, media.speech, FRAMES)
    for node in prompt.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "LoadVideo":
            inputs["file"] = video.name
        elif kind == "LoadImage":
            inputs["image"] = media.still.name
        elif kind == "LoadAudio":
            inputs["audio"] = speech.name
        elif kind == "VHS_LoadVideo":
            inputs.update(video=video.name, frame_load_cap=frames, skip_first_frames=0, select_every_nth=1, force_rate=0)
        elif kind == "LipSyncLoadFaceDetector" and not str(inputs.get("detector", "")).startswith("opencv"):
            inputs["detector"] = opencv_detector(object_info)
    return frames


def source_frames(prompt: dict, media: Media, frames: int) -> np.ndarray:
    """The frames the graph lip-syncs: the still repeated for an image graph, else the clip's."""
    if any(node["class_type"] == "LoadImage" for node in prompt.values()):
        return np.repeat(read_image(media.still.path)[None], frames, axis=0)
    clip = media.short_video if frames == SHORT_FRAMES else media.video
    return read_video(clip.path).frames[:frames]


def change(result: np.ndarray, source: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute difference (0-255) over the pixels of ``mask`` [h, w] in all frames."""
    return float(np.abs(result[:, mask].astype(np.float32) - source[:, mask]).mean())


def check_saved_video(path: Path, source: np.ndarray, frames: int, *, lipsynced: bool = True) -> dict[str, float]:
    """Frame count, duration, an audio stream as long as the video; the mouth changed and far-away pixels did not.

    ``lipsynced=False`` (a graph that only scores and re-times the speech): no pixel changed beyond video coding noise.
    """
    video = read_video(path)
    seconds = frames / FPS
    assert video.frames.shape[0] == frames, f"{path.name}: {video.frames.shape[0]} frames, expected {frames}"
    assert video.frames.shape[1:3] == source.shape[1:3], f"{path.name}: size {video.frames.shape[1:3]}"
    assert abs(video.fps - FPS) < 0.01, f"{path.name}: {video.fps} fps"
    assert abs(video.duration - seconds) <= 0.1, f"{path.name}: lasts {video.duration:.3f} s, expected {seconds:.3f}"
    assert video.audio_seconds is not None, f"{path.name} has no audio stream"
    assert abs(video.audio_seconds - seconds) <= 0.1, f"{path.name}: {video.audio_seconds:.3f} s of audio, expected {seconds:.3f}"
    x1, y1, x2, y2 = cascade_face_box(source)
    width, height = x2 - x1, y2 - y1
    mouth = np.zeros(source.shape[1:3], bool)  # the middle of the lower half of the box, where Wav2Lip paints the mouth
    mouth[y1 + height // 2 : y2 - height // 10, x1 + width // 4 : x2 - width // 4] = True
    far = np.ones(source.shape[1:3], bool)
    far[max(0, y1 - FAR_MARGIN) : y2 + FAR_MARGIN, max(0, x1 - FAR_MARGIN) : x2 + FAR_MARGIN] = False
    inside, outside = change(video.frames, source, mouth), change(video.frames, source, far)
    if not lipsynced:
        assert max(inside, outside) < 3.0, f"{path.name}: the mouth changed by {inside:.2f}, far-away pixels by {outside:.2f}"
        return {"mouth": inside, "far": outside}
    assert inside > 8.0 and inside > 4 * outside, f"{path.name}: the mouth changed by {inside:.2f}, far-away pixels by {outside:.2f}"
    assert outside < 3.0, f"{path.name}: pixels far from the face changed by {outside:.2f} (only video coding noise is expected)"
    return {"mouth": inside, "far": outside}


def video_outputs(files: list[Path]) -> list[Path]:
    return [path for path in files if path.suffix.lower() in VIDEO_SUFFIXES]


def lipsync_graph(object_info: dict, video: str, speech: str, *, detect_batch: int = 16, generate_batch: int = 64) -> dict:
    """A graph of the separate nodes (Load Video -> ... -> Paste Faces Back -> Save Video), with the OpenCV detector.

    Node ids name their role ("detect", "generate"...), so tests can pick them out of /history and the events.
    """

    def node(class_type: str, **inputs) -> dict:
        return default_inputs(object_info, class_type, **inputs)

    return {
        "video": node("LoadVideo", file=video),
        "components": node("GetVideoComponents", video=["video", 0]),
        "speech": node("LoadAudio", audio=speech),
        "wav2lip": node("LipSyncLoadWav2Lip", model_name="wav2lip_gan.pth"),
        "detector": node("LipSyncLoadFaceDetector", detector=opencv_detector(object_info)),
        "mel": node("LipSyncAudioToMel", audio=["speech", 0], fps=["components", 2], frames=["components", 0]),
        "detect": node("LipSyncDetectFaces", frames=["components", 0], face_detector=["detector", 0], batch_size=detect_batch),
        "crop": node("LipSyncCropFaces", frames=["components", 0], face_track=["detect", 0], mel_windows=["mel", 0]),
        "generate": node("LipSyncWav2LipGenerate", wav2lip_model=["wav2lip", 0], face_crops=["crop", 0], mel_windows=["mel", 0],
                         output_track=["crop", 1], batch_size=generate_batch),
        "paste": node("LipSyncPasteFaces", frames=["components", 0], faces=["generate", 0], output_track=["crop", 1]),
        "create": node("CreateVideo", images=["paste", 0], fps=["components", 2], audio=["mel", 1]),
        "save": node("SaveVideo", video=["create", 0], filename_prefix="video/lipsync_graph"),
    }  # fmt: skip
