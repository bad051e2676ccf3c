"""Audio file I/O: decoding, resampling, padding/cropping and atomic writing."""

from audioadapt.audio.io import (
    DEFAULT_CROP,
    AudioInfo,
    CropMode,
    audio_info,
    choose_crop_start,
    load_audio,
    pad_or_crop,
    resample,
    write_audio,
)

__all__ = [
    "AudioInfo",
    "CropMode",
    "DEFAULT_CROP",
    "audio_info",
    "choose_crop_start",
    "load_audio",
    "pad_or_crop",
    "resample",
    "write_audio",
]
