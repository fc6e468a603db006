"""Networks: timestep encoders, sequence models (ARCHITECTURE §4), heads and policy distributions."""

from icrl.nets.encoders import TimestepEncoder
from icrl.nets.sequence import SEQUENCE_KINDS, SequenceModel, make_sequence_model

__all__ = ["SEQUENCE_KINDS", "SequenceModel", "TimestepEncoder", "make_sequence_model"]
