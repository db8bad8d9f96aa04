"""SyncNet scoring: syncnet_v2 layout and inputs, the MFCC, the crops, and the offset / LSE arithmetic
checked against independent numpy computations on the real example clip (random weights)."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from helpers import EXAMPLE_FACE_BOX, randomise_batchnorm, speechlike
from scipy.signal import medfilt

from lipsync.errors import MediaError, NoFaceError
from lipsync.faces.boxes import fixed_box
from lipsync.media.audio import load_audio
from lipsync.media.read import iter_video_frames
from lipsync.models import SyncNetColor, SyncNetV2, load_model_file, load_state_dict_model
from lipsync.speech.mel import melspectrogram
from lipsync.sync.crops import cut_v2_crop, fill_missing_boxes, resample_indices, v2_crop_windows
from lipsync.sync.mfcc import int16_scale, mfcc
from lipsync.sync.offsets import COSINE, EUCLIDEAN, search_offset
from lipsync.sync.plot import plot_scores
from lipsync.sync.prepare import FACE_CROPS, FULL_FRAMES, SYNCNET_CROPS, scorer_crops
from lipsync.sync.scorers import ExpertScorer, SyncNetV2Scorer
from lipsync.sync.shift import shift_samples
from lipsync.sync.video import score_video_file

CLIP_FRAMES = 30  # of the real example clip: enough windows for a real offset search, fast on 2 CPU cores


@pytest.fixture(scope="module")
def clip(example_video) -> tuple[list[np.ndarray], np.ndarray, tuple[int, int, int, int]]:
    """The first frames of the real clip, its own sound (16 kHz) cut to match, and a box around the face."""
    frames = []
    for frame in iter_video_frames(example_video):
        frames.append(frame)
        if len(frames) == CLIP_FRAMES:
            break
    wav = load_audio(example_video)[: CLIP_FRAMES * 640]
    box = fixed_box(EXAMPLE_FACE_BOX, *frames[0].shape[:2])
    return frames, wav, box


class Capturing:
    """Keeps the embeddings a scorer computes, so the arithmetic can be redone independently."""

    def __init__(self, scorer) -> None:
        self.scorer, self.video, self.audio = scorer, None, None
        video_embeddings, audio_embeddings = scorer.video_embeddings, scorer.audio_embeddings

        def keep_video(*args, **kwargs):
            self.video = video_embeddings(*args, **kwargs)
            return self.video

        def keep_audio(*args, **kwargs):
            self.audio = audio_embeddings(*args, **kwargs)
            return self.audio

        scorer.video_embeddings, scorer.audio_embeddings = keep_video, keep_audio


def numpy_offset_search(video: torch.Tensor, audio: torch.Tensor, vshift: int, metric: str) -> dict:
    """syncnet_python's evaluate() arithmetic written out with loops in float64."""
    v, a = video.numpy().astype(np.float64), audio.numpy().astype(np.float64)
    count = len(v)
    table = np.zeros((count, 2 * vshift + 1))
    for shift in range(2 * vshift + 1):
        for i in range(count):
            j = i + shift - vshift
            other = a[j] if 0 <= j < count else np.zeros(v.shape[1])
            if metric == EUCLIDEAN:
                table[i, shift] = np.sqrt(np.sum((v[i] - other + 1e-6) ** 2))
            else:
                norms = np.linalg.norm(v[i]) * np.linalg.norm(other)
                table[i, shift] = 0.0 if norms == 0 else v[i] @ other / norms
    mean = table.mean(axis=0)
    best = int(np.argmin(mean)) if metric == EUCLIDEAN else int(np.argmax(mean))
    median = float(np.median(mean))
    return {"offset": vshift - best, "best": mean[best], "median": median, "per_window": table[:, best], "unshifted": table[:, vshift]}


@pytest.mark.parametrize("length", [100, 400, 401, 561, 16000])
def test_mfcc_equals_python_speech_features(length: int, example_speech) -> None:
    psf = pytest.importorskip("python_speech_features")
    signal = int16_scale(speechlike(length / 16000 + 0.01, seed=length)[:length])
    assert np.array_equal(mfcc(signal), psf.mfcc(signal, 16000))
    speech = int16_scale(load_audio(example_speech))
    ours, theirs = mfcc(speech), psf.mfcc(speech, 16000)
    assert ours.shape == (529, 13) and np.allclose(ours, theirs, rtol=0, atol=1e-9)


def test_syncnet_v2_model_is_detected_and_loaded_exactly(syncnet_v2_model) -> None:
    raw = torch.load(syncnet_v2_model, weights_only=True)
    descriptor = load_model_file(syncnet_v2_model, expected_purpose="sync_expert")
    assert (descriptor.architecture, descriptor.input_size) == ("syncnet_v2", 224)
    assert not descriptor.model.training
    for key, value in raw.items():
        assert torch.equal(descriptor.model.state_dict()[key], value)
    narrow = load_state_dict_model(SyncNetV2(embedding_size=256).state_dict(), expected_purpose="sync_expert")
    assert narrow.architecture == "syncnet_v2" and narrow.model.netfcaud[3].out_features == 256


def test_syncnet_v2_inputs_follow_the_reference_layout() -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (7, 224, 224, 3), dtype=np.uint8)
    scorer = SyncNetV2Scorer(SyncNetV2())
    # SyncNetInstance.evaluate: BGR images stacked on a 4th axis, transposed to [1, 3, T, H, W], floats 0..255.
    reference = np.transpose(np.stack([crop[..., ::-1] for crop in crops], axis=3)[None], (0, 3, 4, 1, 2)).astype(np.float32)
    expected = np.concatenate([reference[:, :, i : i + 5] for i in range(3)])
    assert np.array_equal(scorer.video_input(torch.from_numpy(crops)).numpy(), expected)  # 7 crops: 3 windows
    assert np.allclose(scorer.video_input(torch.from_numpy(crops.astype(np.float32) / 255)).numpy(), expected, atol=1e-4)
    wav = speechlike(0.6, seed=1)
    features = scorer.audio_features(wav)
    table = mfcc(int16_scale(wav)).T  # [13, T] as zip(*mfcc) gives it
    windows = scorer.audio_input(features, range(scorer.window_count(15, features)))
    assert windows.shape == (10, 1, 13, 20)
    assert np.allclose(windows[7, 0].numpy(), table[:, 28:48], atol=1e-5)


def test_expert_inputs_follow_the_reference_layout() -> None:
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (7, 96, 96, 3), dtype=np.uint8)
    scorer = ExpertScorer(SyncNetColor())
    # color_syncnet_train.Dataset: cv2 (BGR) images concatenated on channels, / 255, HWC -> CHW, the lower half.
    expected = []
    for start in range(3):
        window = np.concatenate([crop[..., ::-1] for crop in crops[start : start + 5]], axis=2) / 255.0
        window = window.transpose(2, 0, 1)
        expected.append(window[:, window.shape[1] // 2 :])
    inputs = scorer.video_input(torch.from_numpy(crops))
    assert inputs.shape == (3, 15, 48, 96)
    assert np.allclose(inputs.numpy(), np.stack(expected), atol=1e-7)
    assert np.allclose(scorer.video_input(torch.from_numpy(crops.astype(np.float32) / 255)).numpy(), np.stack(expected), atol=1e-6)


def reference_v2_crop(frame: np.ndarray, boxes: np.ndarray, index: int) -> np.ndarray:
    """run_pipeline.crop_video written out: medfilt(13) of size/centre, pad the frame with 110, slice, resize."""
    size = medfilt(np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2, 13)[index]
    y = medfilt((boxes[:, 1] + boxes[:, 3]) / 2, 13)[index]
    x = medfilt((boxes[:, 0] + boxes[:, 2]) / 2, 13)[index]
    pad = int(size * 1.8)
    padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), "constant", constant_values=(110, 110))
    face = padded[int(y + pad - size) : int(y + pad + size * 1.8), int(x + pad - size * 1.4) : int(x + pad + size * 1.4)]
    return cv2.resize(face, (224, 224))


def test_syncnet_v2_crops_follow_run_pipeline() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    centres = np.stack([160 + 40 * np.sin(np.arange(30) / 4), 100 + rng.normal(0, 8, 30)], axis=1)
    half = 30 + rng.uniform(0, 25, (30, 1))
    boxes = np.concatenate([centres - half, centres + half], axis=1)  # some run past the frame edges
    boxes[5] += 60  # an outlier the median filter removes
    windows = v2_crop_windows(boxes)
    for index in (0, 5, 12, 29):
        assert np.array_equal(cut_v2_crop(frame, windows[index]), reference_v2_crop(frame, boxes, index))


def test_missing_faces_are_interpolated() -> None:
    filled = fill_missing_boxes([None, (0, 0, 10, 10), None, None, (30, 0, 40, 10), None])
    assert filled[:, 0].tolist() == [0, 0, 10, 20, 30, 30]
    with pytest.raises(NoFaceError, match="No face"):
        fill_missing_boxes([None, None])


def test_retiming_to_25_fps() -> None:
    assert resample_indices(5, 25.0) == [0, 1, 2, 3, 4]
    assert resample_indices(10, 50.0) == [0, 2, 4, 6, 8]
    assert resample_indices(6, 30.0) == [0, 1, 2, 3, 4]
    assert resample_indices(3, 12.5) == [0, 0, 1, 1, 2, 2]


def test_syncnet_v2_offset_and_lse_on_the_real_clip_equal_numpy(clip) -> None:
    frames, wav, box = clip
    torch.manual_seed(4)
    capture = Capturing(SyncNetV2Scorer(randomise_batchnorm(SyncNetV2(), seed=4), batch_size=8))
    crops = scorer_crops("syncnet_v2", frames, FULL_FRAMES, [box] * len(frames), frames[0].shape[:2])
    result = capture.scorer.score(crops, len(frames), wav, vshift=15)
    # evaluate(): min(frames, floor(samples / 640)) - 5 windows.
    assert result.windows == CLIP_FRAMES - 5 and capture.video.shape == capture.audio.shape == (CLIP_FRAMES - 5, 1024)
    expected = numpy_offset_search(capture.video, capture.audio, 15, EUCLIDEAN)
    summary = result.summary()
    assert summary["av_offset_frames"] == expected["offset"]
    assert summary["lse_d"] == pytest.approx(expected["best"], rel=1e-5)
    assert summary["lse_c"] == pytest.approx(expected["median"] - expected["best"], abs=1e-4)
    framewise = medfilt(expected["median"] - expected["per_window"], kernel_size=9)
    assert np.allclose(result.search.framewise_confidence(), framewise, atol=1e-4)
    assert len(summary["mean_per_offset"]) == 31 and "LSE-D" in result.text() and "LSE-C" in result.text()


def test_expert_scores_on_the_real_clip_equal_numpy(clip) -> None:
    frames, wav, box = clip
    frames, wav = frames[:12], wav[: 12 * 640]
    torch.manual_seed(5)
    capture = Capturing(ExpertScorer(randomise_batchnorm(SyncNetColor(), seed=5), batch_size=8))
    crops = scorer_crops("syncnet_color", frames, FULL_FRAMES, [box] * len(frames), frames[0].shape[:2])
    result = capture.scorer.score(crops, len(frames), wav, vshift=6)
    assert result.windows == 8 and capture.video.shape == (8, 512)
    scores = np.asarray(result.search.unshifted)
    assert scores.shape == (8,) and np.all(np.abs(scores) <= 1 + 1e-6)
    expected = numpy_offset_search(capture.video, capture.audio, 6, COSINE)
    assert np.allclose(scores, expected["unshifted"], atol=1e-5)
    assert result.search.offset == expected["offset"]
    assert result.summary()["mean_cosine"] == pytest.approx(expected["unshifted"].mean(), abs=1e-5)
    # The model's own cosine (forward() normalises) agrees with the scorer's.
    mel = melspectrogram(wav)
    window = 3
    start = int(80 * window / 25)
    faces = np.stack(frames[window : window + 5])
    x1, y1, x2, y2 = box[0], box[1], box[2], min(faces.shape[1], box[3] + 10)  # Wav2Lip's default bottom pad
    crops = np.stack([cv2.resize(face[y1:y2, x1:x2], (96, 96)) for face in faces])
    # color_syncnet_train: BGR /255 frames concatenated on channels, lower half.
    stacked = np.concatenate([crop[..., ::-1] for crop in crops], axis=2).transpose(2, 0, 1)[:, 48:] / 255.0
    with torch.inference_mode():
        audio, face = capture.scorer.model(
            torch.from_numpy(mel[:, start : start + 16]).float()[None, None], torch.from_numpy(stacked).float()[None]
        )
    assert torch.nn.functional.cosine_similarity(audio, face).item() == pytest.approx(scores[window], abs=2e-6)


def test_offset_sign_and_audio_shift_agree() -> None:
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(60, 16, generator=generator)
    for delay in (-4, 0, 3):
        # The audio's window j carries what the face shows at frame j + delay: the sound is `delay` frames early.
        video = content[10:50]
        audio = content[10 + delay : 50 + delay]
        for metric in (EUCLIDEAN, COSINE):
            assert search_offset(video, audio, vshift=6, metric=metric).offset == delay
    samples = np.arange(1, 11, dtype=np.float32)[None]
    delayed = shift_samples(samples, 2, fps=25.0, sample_rate=50)  # 2 frames = 4 samples
    assert delayed.tolist() == [[0, 0, 0, 0, 1, 2, 3, 4, 5, 6]]
    assert shift_samples(samples, -1, fps=25.0, sample_rate=50).tolist() == [[3, 4, 5, 6, 7, 8, 9, 10, 0, 0]]
    assert not shift_samples(samples, 9, fps=25.0, sample_rate=50).any()


def test_face_crop_inputs_and_short_clips(clip) -> None:
    frames, wav, box = clip
    faces = [frame[box[1] : box[3], box[0] : box[2]] for frame in frames[:3]]
    expert = list(scorer_crops("syncnet_color", faces, FACE_CROPS))
    assert expert[0].shape == (96, 96, 3) and np.array_equal(expert[0], cv2.resize(faces[0], (96, 96)))
    v2 = list(scorer_crops("syncnet_v2", faces, FACE_CROPS))
    assert v2[0].shape == (224, 224, 3) and (v2[0][:, 0] == 110).all()  # the window is wider than the face box
    assert list(scorer_crops("syncnet_v2", v2, SYNCNET_CROPS))[1] is v2[1]
    with pytest.raises(MediaError, match="too short"):
        SyncNetV2Scorer(SyncNetV2()).score(iter(v2), len(v2), wav)


def test_plot_draws_the_curve() -> None:
    values = np.sin(np.linspace(0, 6, 50))
    image = plot_scores(values, 25.0, "cosine")
    assert image.shape == (360, 960, 3) and image.dtype == np.uint8
    blue = (image[..., 2] > 150) & (image[..., 0] < 80)
    assert blue.sum() > 500
    columns = np.nonzero(blue.any(axis=0))[0]
    assert columns.min() < 100 and columns.max() > 900  # spans the whole time axis
    assert plot_scores(np.full(3, np.nan), 25.0, "empty").shape == (360, 960, 3)
    assert plot_scores(np.ones(1), 25.0, "one point").any()


@pytest.mark.skipif(not os.environ.get("LIPSYNC_SYNCNET_V2"), reason="set LIPSYNC_SYNCNET_V2 to the real syncnet_v2.model")
def test_published_figures_with_the_real_weights(example_video) -> None:
    """syncnet_python's README: data/example.avi gives AV offset 3, min dist 5.353, confidence 10.021.

    That clip (a 224x224 face track, fetched by its download_model.sh) is not on PyPI: point
    LIPSYNC_SYNCNET_EXAMPLE at it. The reference decodes frames through JPEG files, so the distances
    may differ a little from ours; the offset must not.
    """
    scorer = SyncNetV2Scorer.from_file(os.environ["LIPSYNC_SYNCNET_V2"])
    example = os.environ.get("LIPSYNC_SYNCNET_EXAMPLE")
    if example:
        (result,) = score_video_file(example, [scorer], input_kind=SYNCNET_CROPS)
        assert result.search.offset == 3
        assert result.search.best == pytest.approx(5.353, abs=0.1)
        assert result.search.confidence == pytest.approx(10.021, abs=0.3)
    # Delaying the speech by 5 frames must move the detected offset by -5.
    box = EXAMPLE_FACE_BOX
    (plain,) = score_video_file(example_video, [scorer], box=box)
    wav = load_audio(example_video)
    delayed = shift_samples(wav, 5, 25.0, 16000)
    frames = list(iter_video_frames(example_video))
    crops = scorer_crops("syncnet_v2", frames, FULL_FRAMES, [fixed_box(box, *frames[0].shape[:2])] * len(frames), frames[0].shape[:2])
    shifted = scorer.score(crops, len(frames), delayed)
    assert plain.search.confidence > 1.0
    assert shifted.search.offset == plain.search.offset - 5


class LoudnessScorer(ExpertScorer):
    """The expert scorer's real windowing with the network swapped for a transparent one: the face embedding
    is the brightness of the lower half in each of the 5 frames, the audio embedding the loudness of the
    mel columns under each frame (both centred), so the true offset is known."""

    def embed_video(self, inputs: torch.Tensor) -> torch.Tensor:
        brightness = inputs.reshape(len(inputs), 5, -1).mean(dim=2)
        return brightness - brightness.mean(dim=1, keepdim=True)

    def embed_audio(self, inputs: torch.Tensor) -> torch.Tensor:
        columns = inputs[:, 0].mean(dim=1)  # [B, 16]
        frame_of_column = (torch.arange(16) * 5) // 16
        loudness = torch.stack([columns[:, frame_of_column == frame].mean(dim=1) for frame in range(5)], dim=1)
        return loudness - loudness.mean(dim=1, keepdim=True)


def test_offset_sign_end_to_end_with_a_transparent_scorer() -> None:
    """Mouth brightness follows the speech loudness frame by frame; delaying the speech by d frames must
    give offset -d, and shifting by the detected offset must bring it back to 0."""
    frames = 60
    rng = np.random.default_rng(7)
    level = rng.uniform(0.05, 1.0, frames)
    crops = [np.full((96, 96, 3), value, dtype=np.float32) for value in level]
    samples = np.repeat(level, 640) * rng.standard_normal(frames * 640) * 0.3
    scorer = LoudnessScorer(SyncNetColor())
    assert scorer.score(iter(crops), frames, samples, vshift=6).search.offset == 0
    for delay in (3, -2):
        moved = shift_samples(samples, delay, 25.0, 16000)
        detected = scorer.score(iter(crops), frames, moved, vshift=6).search.offset
        assert detected == -delay
        assert scorer.score(iter(crops), frames, shift_samples(moved, detected, 25.0, 16000), vshift=6).search.offset == 0


class LoudnessV2Scorer(SyncNetV2Scorer):
    """syncnet_v2's real windowing (MFCC steps 4 i .. 4 i + 20, Euclidean search) with a transparent network:
    the face embedding is the brightness of each of the 5 frames, the audio embedding the log energy (MFCC
    coefficient 0) of each frame's 4 steps, both standardised, so in sync they nearly coincide."""

    @staticmethod
    def standardised(values: torch.Tensor) -> torch.Tensor:
        centred = values - values.mean(dim=1, keepdim=True)
        return centred / (centred.pow(2).mean(dim=1, keepdim=True).sqrt() + 1e-6)

    def embed_video(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.standardised(inputs.mean(dim=(1, 3, 4)))  # [B, 3, 5, H, W] -> [B, 5]

    def embed_audio(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.standardised(inputs[:, 0, 0].reshape(len(inputs), 5, 4).mean(dim=2))  # [B, 1, 13, 20] -> [B, 5]


def test_lse_c_tells_in_sync_speech_from_shuffled_speech() -> None:
    """LSE-C is high when the mouth follows the speech and near zero when the same speech is shuffled in
    frame-long pieces; LSE-D is lower in sync, and a delay of the speech shows as the offset."""
    frames = 60
    rng = np.random.default_rng(11)
    level = rng.uniform(0.05, 1.0, frames)
    crops = [np.full((224, 224, 3), round(255 * value), dtype=np.uint8) for value in level]
    noise = rng.standard_normal(frames * 640)
    in_sync = np.repeat(level, 640) * noise * 0.3
    shuffled = np.repeat(level[rng.permutation(frames)], 640) * noise * 0.3
    scorer = LoudnessV2Scorer(SyncNetV2())
    synced = scorer.score(iter(crops), frames, in_sync).summary()
    mixed = scorer.score(iter(crops), frames, shuffled).summary()
    assert synced["av_offset_frames"] == 0
    assert synced["lse_c"] > 1.5 and mixed["lse_c"] < 1.0  # seen: 2.2-2.5 and 0.3-0.6 over six random clips
    assert synced["lse_d"] < mixed["lse_d"] - 1.0
    delayed = scorer.score(iter(crops), frames, shift_samples(in_sync, 4, 25.0, 16000)).summary()
    assert delayed["av_offset_frames"] == -4 and delayed["lse_c"] > 1.0
