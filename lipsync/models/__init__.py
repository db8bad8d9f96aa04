"""Model architectures and their loading: Wav2Lip, the expert colour SyncNet, syncnet_v2, the S3FD face detector and GPEN."""

from .checkpoint import read_state_dict, save_checkpoint, unwrap_state_dict
from .fuse import fold_batchnorm
from .registry import ARCHITECTURES, ModelDescriptor, detect_architecture, load_model_file, load_state_dict_model
from .syncnet import SyncNetColor
from .syncnet_v2 import SyncNetV2
from .wav2lip import Wav2Lip

__all__ = [
    "ARCHITECTURES",
    "ModelDescriptor",
    "SyncNetColor",
    "SyncNetV2",
    "Wav2Lip",
    "detect_architecture",
    "fold_batchnorm",
    "load_model_file",
    "load_state_dict_model",
    "read_state_dict",
    "save_checkpoint",
    "unwrap_state_dict",
]
