"""Execution on the real server: Cancel (POST /interrupt), ComfyUI's cache with new speech, VideoHelperSuite around our nodes."""

from __future__ import annotations

from integration.graphs import check_saved_video, lipsync_graph, video_outputs
from integration.media import Media, read_video
from integration.server import ComfyServer, cached_nodes, status_messages
from integration.workflow_api import default_inputs

# VHS loads this many frames and the clip's own speech under them (0.24 s: 20 mel columns, enough for one window).
VHS_FRAMES = 6


def test_interrupt_stops_a_long_run_and_the_server_runs_the_next_prompt(comfy: ComfyServer, media: Media, example_speech) -> None:
    # The clip looped to the whole 5.3 s of speech: 133 frames to generate, 4 at a time.
    long_run = lipsync_graph(comfy.object_info, media.video.name, comfy.upload(example_speech, "full_speech.wav"),
                             detect_batch=4, generate_batch=4)  # fmt: skip
    long_run["save"]["inputs"]["filename_prefix"] = "video/interrupted"
    prompt_id = comfy.submit(long_run)
    # Wait until Detect Faces reports progress: the run is inside our node, between batches.
    comfy.events.wait_for(lambda event: event.get("type") == "progress" and event["data"].get("prompt_id") == prompt_id
                          and event["data"].get("node") == "detect")  # fmt: skip
    comfy.interrupt()
    entry = comfy.wait(prompt_id, timeout=120)
    assert entry["status"]["status_str"] == "error"
    interrupted = status_messages(entry, "execution_interrupted")
    assert interrupted and interrupted[0]["node_id"] in {"detect", "crop", "generate"}, entry["status"]
    assert not status_messages(entry, "execution_error")  # stopped, not crashed
    assert not list((comfy.base / "output" / "video").glob("interrupted*"))  # nothing half-written
    # The server still answers and runs the next prompt.
    entry = comfy.run(lipsync_graph(comfy.object_info, media.short_video.name, media.short_speech.name))
    assert video_outputs(comfy.output_files(entry))


def test_new_speech_reuses_the_cached_face_detection(comfy: ComfyServer, media: Media) -> None:
    comfy.run(lipsync_graph(comfy.object_info, media.short_video.name, media.short_speech.name))
    second = lipsync_graph(comfy.object_info, media.short_video.name, media.short_other_speech.name)
    second_id = comfy.submit(second)
    second_entry = comfy.wait(second_id)
    assert second_entry["status"]["status_str"] == "success"
    cached = cached_nodes(second_entry)
    # Detect Faces (and what feeds it) came from the cache; everything that depends on the speech ran again.
    assert {"video", "components", "detector", "detect", "wav2lip"} <= cached, cached
    assert not {"speech", "mel", "crop", "generate", "paste", "create", "save"} & cached, cached
    # The websocket events say the same: Detect Faces never started executing in the second run.
    events = comfy.events.for_prompt(second_id)
    executed = {event["data"]["node"] for event in events if event["type"] == "executing" and event["data"].get("node")}
    assert "detect" not in executed and {"mel", "generate", "paste"} <= executed, executed
    cached_event = [event["data"]["nodes"] for event in events if event["type"] == "execution_cached"]
    assert len(cached_event) == 1 and "detect" in cached_event[0], cached_event


def test_videohelpersuite_load_video_and_video_combine_around_our_nodes(vhs: ComfyServer, media: Media) -> None:
    """VHS's IMAGE and (lazy) AUDIO outputs feed our nodes, and our IMAGE/AUDIO feed its Video Combine."""
    prompt = lipsync_graph(vhs.object_info, media.short_video.name, media.short_speech.name)
    for name in ("video", "components", "speech", "create", "save"):
        del prompt[name]
    prompt["load"] = default_inputs(vhs.object_info, "VHS_LoadVideo", video=media.video.name, frame_load_cap=VHS_FRAMES,
                                    format="None")  # fmt: skip
    frames, fps = ["load", 0], 25.0
    prompt["mel"]["inputs"].update(audio=["load", 2], fps=fps, frames=frames, length_mode="fit audio to video")
    prompt["detect"]["inputs"]["frames"] = frames
    prompt["crop"]["inputs"]["frames"] = frames
    prompt["paste"]["inputs"]["frames"] = frames
    prompt["combine"] = default_inputs(
        vhs.object_info, "VHS_VideoCombine", images=["paste", 0], audio=["mel", 1], frame_rate=fps, filename_prefix="lipsync_vhs",
        format="video/h264-mp4", save_output=True, pix_fmt="yuv420p", crf=19, save_metadata=True, trim_to_audio=False,
    )  # fmt: skip
    entry = vhs.run(prompt)
    videos = video_outputs(vhs.output_files(entry))
    assert len(videos) == 1 and videos[0].name.startswith("lipsync_vhs"), entry["outputs"]
    check_saved_video(videos[0], read_video(media.video.path).frames[:VHS_FRAMES], VHS_FRAMES)
