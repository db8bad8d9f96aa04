"""Face restoration (GFPGAN, RestoreFormer, CodeFormer through spandrel; GPEN our own), blended back inside the mouth mask."""

from .apply import RESTORE_SIZE, restore_faces, restore_geometry
from .model import FaceRestorer, load_face_restorer, restorer_from_state_dict

__all__ = ["RESTORE_SIZE", "FaceRestorer", "load_face_restorer", "restore_faces", "restore_geometry", "restorer_from_state_dict"]
