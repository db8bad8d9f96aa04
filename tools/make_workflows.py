"""The example workflows, one per common task: ``python tools/make_workflows.py --object-info URL`` writes workflows/*.json.

The URL is a running ComfyUI's /object_info with this pack and VideoHelperSuite installed (see tools/workflow_layout.py).
"""

from __future__ import annotations

from workflow_layout import IMAGE, SPEECH, VIDEO, Group, Node, Note, Workflow, main

WAV2LIP = Node("wav2lip", "LipSyncLoadWav2Lip", {"model_name": "wav2lip_gan.pth"})
DETECTOR = Node("detector", "LipSyncLoadFaceDetector", {"detector": "s3fd.pth", "detection_size": 640})
SPEECH_IN = Node("speech", "LoadAudio", {"audio": SPEECH}, title="Load Audio (speech)")
MODELS_NOTE = Note("models_note", "Weights: wav2lip_gan.pth in models/wav2lip, s3fd.pth in models/facedetection.\n"
                   "python -m lipsync weights download wav2lip_gan.pth s3fd.pth")  # fmt: skip
FACES_NOTE = Note("faces_note", "Finds the face in every frame. Detection does not depend on the speech, so new speech "
                  "reuses the cached result. The node shows frames without a face.")  # fmt: skip
LIPSYNC_NOTE = Note("lipsync_note", "Wav2Lip draws the mouth for each 96x96 crop and pastes it back. "
                    "Frames without a face pass through unchanged.")  # fmt: skip
OUTPUT_NOTE = Note("output_note", "Muxes the frames with the speech cut to the video's length. Saved to output/video/.")


def separate_chain(load_frames: list[Node | Note], fps_from: tuple[str, str], frames_from: tuple[str, str], paste_mode: str) -> tuple:
    """The Inputs / Faces / Lip-sync groups and their links for a graph of separate nodes."""
    inputs = Group("Inputs", [[*load_frames, SPEECH_IN], [Node("mel", "LipSyncAudioToMel"), WAV2LIP, DETECTOR, MODELS_NOTE]])
    faces = Group("Faces", [[FACES_NOTE, Node("detect", "LipSyncDetectFaces"), Node("crop", "LipSyncCropFaces")]])
    lipsync = Group(
        "Lip-sync", [[LIPSYNC_NOTE, Node("generate", "LipSyncWav2LipGenerate"), Node("paste", "LipSyncPasteFaces", {"mode": paste_mode})]]
    )
    links = [
        (*frames_from, "mel", "frames"),
        ("speech", "AUDIO", "mel", "audio"),
        (*fps_from, "mel", "fps"),
        (*frames_from, "detect", "frames"),
        ("detector", "face_detector", "detect", "face_detector"),
        (*frames_from, "crop", "frames"),
        ("detect", "face_track", "crop", "face_track"),
        ("mel", "mel_windows", "crop", "mel_windows"),
        ("wav2lip", "wav2lip_model", "generate", "wav2lip_model"),
        ("crop", "face_crops", "generate", "face_crops"),
        ("mel", "mel_windows", "generate", "mel_windows"),
        ("crop", "output_track", "generate", "output_track"),
        (*frames_from, "paste", "frames"),
        ("generate", "faces", "paste", "faces"),
        ("crop", "output_track", "paste", "output_track"),
    ]
    return inputs, faces, lipsync, links


def core_video_input() -> tuple[list[Node], tuple[str, str], tuple[str, str], list]:
    nodes = [Node("video", "LoadVideo", {"file": VIDEO}), Node("components", "GetVideoComponents")]
    return nodes, ("components", "fps"), ("components", "images"), [("video", "VIDEO", "components", "video")]


def core_output(frames_from: tuple[str, str], prefix: str) -> tuple[Group, list]:
    group = Group("Output", [[OUTPUT_NOTE, Node("create", "CreateVideo"), Node("save", "SaveVideo", {"filename_prefix": prefix})]])
    links = [(*frames_from, "create", "images"), ("mel", "audio", "create", "audio"), ("components", "fps", "create", "fps"),
             ("create", "VIDEO", "save", "video")]  # fmt: skip
    return group, links


def video_with_speech() -> Workflow:
    load, fps, frames, load_links = core_video_input()
    inputs, faces, lipsync, links = separate_chain(load, fps, frames, "box")
    output, output_links = core_output(("paste", "frames"), "video/lipsync")
    return Workflow("lipsync_video_with_speech", [inputs, faces, lipsync, output], load_links + links + output_links)


def video_with_restoration() -> Workflow:
    load, fps, frames, load_links = core_video_input()
    inputs, faces, lipsync, links = separate_chain(load, fps, frames, "mouth mask")
    lipsync.columns.append([Node("mask_preview", "PreviewImage", title="Preview Image (replaced area)")])
    restore = Group("Restore", [[
        Note("restore_note", "Restores the blurry Wav2Lip mouth at 512 with GFPGANv1.4.pth (models/facerestore_models). "
             "On a CPU this takes about 5-12 s per face: use a GPU for long videos."),
        Node("restorer", "LipSyncLoadFaceRestorer", {"model_name": "GFPGANv1.4.pth"}),
        Node("restore", "LipSyncRestoreFaces"),
    ]])  # fmt: skip
    output, output_links = core_output(("restore", "frames"), "video/lipsync_restored")
    links += [("paste", "mask_preview", "mask_preview", "images"), ("paste", "frames", "restore", "frames"),
              ("crop", "output_track", "restore", "output_track"),
              ("restorer", "face_restorer", "restore", "face_restorer")]  # fmt: skip
    return Workflow("lipsync_video_with_restoration", [inputs, faces, lipsync, restore, output], load_links + links + output_links)


def image_to_talking_video() -> Workflow:
    inputs = Group("Inputs", [[Node("image", "LoadImage", {"image": IMAGE}), SPEECH_IN], [WAV2LIP, DETECTOR, MODELS_NOTE]])
    lipsync = Group("Lip-sync", [[
        Note("aio_note", "One node for the whole chain. A single image is repeated for the length of the speech. "
             "The node shows frames without a face."),
        Node("aio", "LipSyncAllInOne"),
    ]])  # fmt: skip
    output = Group(
        "Output",
        [
            [
                OUTPUT_NOTE,
                Node("create", "CreateVideo", {"fps": 25.0}),
                Node("save", "SaveVideo", {"filename_prefix": "video/talking_image"}),
            ]
        ],
    )
    links = [
        ("image", "IMAGE", "aio", "frames"),
        ("speech", "AUDIO", "aio", "audio"),
        ("wav2lip", "wav2lip_model", "aio", "wav2lip_model"),
        ("detector", "face_detector", "aio", "face_detector"),
        ("aio", "frames", "create", "images"),
        ("aio", "audio", "create", "audio"),
        ("create", "VIDEO", "save", "video"),
    ]
    return Workflow("lipsync_image_to_talking_video", [inputs, lipsync, output], links)


def vhs_video() -> Workflow:
    load = [
        Node("vhs_load", "VHS_LoadVideo", {"video": VIDEO, "choose video to upload": "image"}, title="Load Video (VHS)"),
        Node("vhs_info", "VHS_VideoInfoLoaded", title="Video Info (VHS)"),
    ]
    inputs, faces, lipsync, links = separate_chain(load, ("vhs_info", "fps🟦"), ("vhs_load", "IMAGE"), "box")
    output = Group("Output", [[
        Note("vhs_note", "VideoHelperSuite's Video Combine muxes the frames with the matched speech."),
        Node("combine", "VHS_VideoCombine", {"frame_rate": 25.0, "filename_prefix": "lipsync_vhs", "format": "video/h264-mp4",
                                             "pix_fmt": "yuv420p", "crf": 19, "save_metadata": True, "trim_to_audio": False}),
    ]])  # fmt: skip
    links = [("vhs_load", "video_info", "vhs_info", "video_info"), *links, ("paste", "frames", "combine", "images"),
             ("mel", "audio", "combine", "audio"), ("vhs_info", "fps🟦", "combine", "frame_rate")]  # fmt: skip
    return Workflow("lipsync_vhs_video", [inputs, faces, lipsync, output], links)


def score_video() -> Workflow:
    load, fps, frames, load_links = core_video_input()
    inputs = Group("Inputs", [load, [
        Node("syncnet", "LipSyncLoadSyncNet", {"model_name": "lipsync_expert.pth"}), DETECTOR,
        Note("score_models", "lipsync_expert.pth (or syncnet_v2.model for LSE-C / LSE-D) in models/syncnet; "
             "s3fd.pth in models/facedetection."),
    ]])  # fmt: skip
    score = Group("Score", [
        [Note("score_note", "Sync Score: how well the mouth matches the speech (offset, confidence) and a plot per window. "
              "Auto Offset shifts the speech by the offset it finds."),
         Node("score", "LipSyncSyncScore"), Node("offset", "LipSyncAutoOffset")],
        [Node("summary", "PreviewAny", title="Summary"), Node("plot", "PreviewImage", title="Score plot")],
    ])  # fmt: skip
    output = Group("Output", [[
        Note("offset_note", "The video with its speech shifted to match the mouth."),
        Node("create", "CreateVideo"), Node("save", "SaveVideo", {"filename_prefix": "video/lipsync_offset"}),
    ]])  # fmt: skip
    links = [
        *load_links,
        (*frames, "score", "frames"), ("components", "audio", "score", "audio"), (*fps, "score", "fps"),
        ("syncnet", "syncnet", "score", "syncnet"), ("detector", "face_detector", "score", "face_detector"),
        ("score", "summary", "summary", "source"), ("score", "plot", "plot", "images"),
        (*frames, "offset", "frames"), ("components", "audio", "offset", "audio"), (*fps, "offset", "fps"),
        ("syncnet", "syncnet", "offset", "syncnet"), ("detector", "face_detector", "offset", "face_detector"),
        (*frames, "create", "images"), ("offset", "audio", "create", "audio"), (*fps, "create", "fps"),
        ("create", "VIDEO", "save", "video"),
    ]  # fmt: skip
    return Workflow("lipsync_score_video", [inputs, score, output], links)


def video_streaming() -> Workflow:
    inputs = Group("Inputs", [
        [Note("streaming_note", "For long videos: Lip Sync Video reads the file chunk by chunk, so memory stays flat "
              "whatever the length. Load Video gives it the file itself; no frames are decoded into the graph."),
         Node("video", "LoadVideo", {"file": VIDEO}), SPEECH_IN],
        [WAV2LIP, DETECTOR, MODELS_NOTE],
    ])  # fmt: skip
    lipsync = Group("Lip-sync", [[
        Note("video_note", "The whole chain in one node, with the command line's options and defaults: detect, Wav2Lip, "
             "paste back (and restore, with a face restorer connected), then encode H.264 + AAC. The node shows frames "
             "without a face."),
        Node("lipsync", "LipSyncVideo"),
    ]])  # fmt: skip
    output = Group("Output", [[
        Note("streaming_output_note", "Saves the node's finished file as it is, without re-encoding. Saved to output/video/."),
        Node("save", "SaveVideo", {"filename_prefix": "video/lipsync_long"}),
    ]])  # fmt: skip
    links = [
        ("video", "VIDEO", "lipsync", "video"),
        ("speech", "AUDIO", "lipsync", "audio"),
        ("wav2lip", "wav2lip_model", "lipsync", "wav2lip_model"),
        ("detector", "face_detector", "lipsync", "face_detector"),
        ("lipsync", "video", "save", "video"),
    ]
    return Workflow("lipsync_video_streaming", [inputs, lipsync, output], links)


WORKFLOWS = [video_with_speech(), image_to_talking_video(), video_with_restoration(), vhs_video(), score_video(), video_streaming()]


if __name__ == "__main__":
    main(WORKFLOWS)
