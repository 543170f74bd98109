"""espeak-ng speech with phoneme timings, through ctypes, for the synthetic corpus.

The ``espeakng-loader`` wheel ships ``libespeak-ng`` and its data folder, so no
system package is needed. We run espeak in synchronous mode with phoneme
events (``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, PHONEME_EVENTS)``,
see espeak-ng ``src/include/espeak-ng/speak_lib.h``): the synth callback gets
int16 audio blocks at 22050 Hz and, with them, events; a phoneme event gives
the phoneme's mnemonic and the time it starts in the output (ms).

Three properties of the library shape this module:

- **It is not thread-safe and keeps global state.** One lock serialises all
  use in a process.
- **Its output depends on what it said before.** Function-local statics in the
  wave generator (the pitch-flutter phase, among others) survive
  ``espeak_Terminate``/``espeak_Initialize``, so the same text comes out a few
  samples different the second time. A corpus must be reproducible byte for
  byte, so each call loads a private copy of the library, synthesises and
  unloads it again (``dlclose``): every utterance starts from the library's
  initial state, at a few ms and a small leak per call (bench/README.md has
  the figures). The copy lives in a temporary folder so that no other user
  of the wheel's library in the same process (which would pin it in memory)
  can defeat the reset.
- **Breathy voices are noisy on purpose.** espeak-ng draws their breath
  noise from its own generator, which it seeds from the clock, and it also
  links the C library's ``rand()``. Right before every synthesis we seed
  both: ``espeak_ng_SetRandSeed`` and ``srand`` (the latter reseeds the
  process's ``rand()``; nothing else in our stack uses it).
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import html
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.audio import SAMPLE_RATE_HZ
from engine.errors import EngineError
from models.data.resample import resample

OUTPUT_SAMPLE_RATE_HZ = SAMPLE_RATE_HZ
"""Rate of the audio this module returns (Hz): the networks' input rate."""

# speak_lib.h constants (API revision 12).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
# Without this flag espeak calls exit() when its data folder is missing.
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_SSML = 0x10
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7
_EE_OK = 0
_NOISE_SEED = 1

RATE_WPM_LIMITS = (80, 450)
"""espeak's accepted speaking rates (words per minute), speak_lib.h."""
PITCH_LIMITS = (0, 100)
"""espeak's base pitch and pitch range scale; 50 is the voice's normal."""


class EspeakError(EngineError, RuntimeError):
    """espeak-ng could not be loaded, initialised, or refused a request."""


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),  # WORD and SENTENCE events
        ("name", ctypes.c_char_p),  # MARK and PLAY events
        ("string", ctypes.c_char * 8),  # PHONEME events: mnemonic, NUL-terminated unless 8 bytes long
    ]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h (40 bytes on LP64)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of this synthesis
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Phoneme:
    """One phoneme as espeak spoke it.

    ``mnemonic`` is espeak's own name (Kirshenbaum-like ASCII, e.g. ``'oU``
    with its stress mark, ``_:`` for a pause); times are ms from the start
    of the returned audio, ``start_ms < end_ms``.
    """

    mnemonic: str
    start_ms: float
    end_ms: float


@dataclass(frozen=True)
class Synthesis:
    """Audio and its phoneme alignment.

    ``audio``: (n_samples,) float32 in [-1, 1] at ``sample_rate_hz``.
    ``phonemes``: in time order, contiguous (each ends where the next
    starts), the last one ending at the end of the audio.
    """

    audio: np.ndarray
    phonemes: tuple[Phoneme, ...]
    sample_rate_hz: int = OUTPUT_SAMPLE_RATE_HZ


@dataclass(frozen=True)
class _Paths:
    library: str
    data: str


@lru_cache(maxsize=1)
def _wheel_paths() -> _Paths:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise EspeakError(
            "espeak-ng is not installed: pip install espeakng-loader (it ships libespeak-ng and its data)"
        ) from exc
    library = espeakng_loader.get_library_path()
    data = espeakng_loader.get_data_path()
    if not os.path.isfile(library):
        raise EspeakError(f"espeakng-loader's library is missing: {library}")
    return _Paths(library=library, data=data)


_lock = threading.Lock()
_private_library: str | None = None


def _private_library_path() -> str:
    """Path of this process's own copy of libespeak-ng (made on first use)."""
    global _private_library
    if _private_library is None:
        folder = tempfile.mkdtemp(prefix="espeak-private-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "libespeak-ng-private.so")
        shutil.copyfile(_wheel_paths().library, path)
        _private_library = path
    return _private_library


def _declare(lib: ctypes.CDLL) -> None:
    """Give ctypes the C signatures, so that arguments convert correctly."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p


class _Session:
    """One load-initialise-use-terminate-unload cycle of the library.

    Use only under ``_lock``. ``sample_rate_hz`` is what espeak reported.
    """

    def __enter__(self) -> _Session:
        path = _private_library_path()
        try:
            self.lib = ctypes.CDLL(path, mode=os.RTLD_LOCAL)
        except OSError as exc:
            raise EspeakError(f"cannot load libespeak-ng from {path}: {exc}") from exc
        _declare(self.lib)
        rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            _wheel_paths().data.encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            self._unload()
            raise EspeakError(f"espeak_Initialize failed ({rate}); data folder {_wheel_paths().data}")
        self.sample_rate_hz = rate
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lib.espeak_Terminate()
        self._unload()

    def _unload(self) -> None:
        handle = self.lib._handle
        del self.lib
        _ctypes.dlclose(handle)


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    """The process's C library, for ``srand`` (espeak links ``rand``)."""
    libc = ctypes.CDLL(None)
    libc.srand.argtypes = [ctypes.c_uint]
    libc.srand.restype = None
    return libc


@lru_cache(maxsize=1)
def espeak_version() -> str:
    """espeak-ng's version string, e.g. ``1.52.0``: recorded in corpus manifests."""
    with _lock, _Session() as session:
        return session.lib.espeak_Info(None).decode()


@lru_cache(maxsize=1)
def available_languages() -> frozenset[str]:
    """Language names espeak accepts (lower case), read from the data's ``lang`` files."""
    names: set[str] = set()
    for path in (Path(_wheel_paths().data) / "lang").rglob("*"):
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                words = line.split()
                if len(words) >= 2 and words[0] == "language":
                    names.add(words[1].lower())
    return frozenset(names)


@lru_cache(maxsize=1)
def available_variants() -> frozenset[str]:
    """Voice variants (speaker characters: ``m3``, ``f2``, ``klatt``...) in the data's ``voices/!v``."""
    folder = Path(_wheel_paths().data) / "voices" / "!v"
    return frozenset(p.name for p in folder.iterdir() if p.is_file())


def check_voice(voice: str) -> None:
    """Raise ValueError unless ``voice`` (``language`` or ``language+variant``) exists.

    espeak itself silently falls back to its default for an unknown variant,
    which would mislabel a corpus.
    """
    language, _, variant = voice.partition("+")
    if language.lower() not in available_languages():
        raise ValueError(f"espeak has no language {language!r} (voice {voice!r})")
    if variant and variant not in available_variants():
        raise ValueError(f"espeak has no voice variant {variant!r} (voice {voice!r})")


def _check_range(name: str, value: int, limits: tuple[int, int]) -> None:
    if not limits[0] <= value <= limits[1]:
        raise ValueError(f"{name}={value} outside espeak's range {limits}")


def synthesize(
    text: str,
    *,
    voice: str = "en",
    rate_wpm: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap_10ms: int = 0,
    ssml: bool = False,
) -> Synthesis:
    """Speak ``text`` and return 16 kHz audio with its phoneme alignment.

    Args:
        text: UTF-8 text. With ``ssml=True`` it is SSML-like markup (espeak
            honours ``<break time="300ms"/>``); without, it is escaped.
        voice: ``language`` or ``language+variant``, e.g. ``en-us+f2``.
        rate_wpm: speaking rate, words per minute (80..450).
        pitch: base pitch, 0..100 (50 = the voice's normal).
        pitch_range: intonation range, 0..100 (0 = monotone, 50 = normal).
        word_gap_10ms: extra pause between words, units of 10 ms.

    Returns:
        A Synthesis whose phoneme times are ms in the returned audio.
        Same arguments, same bytes: every call starts espeak afresh.
    """
    check_voice(voice)
    _check_range("rate_wpm", rate_wpm, RATE_WPM_LIMITS)
    _check_range("pitch", pitch, PITCH_LIMITS)
    _check_range("pitch_range", pitch_range, PITCH_LIMITS)
    if word_gap_10ms < 0:
        raise ValueError(f"word_gap_10ms must be >= 0, got {word_gap_10ms}")
    markup = text if ssml else html.escape(text, quote=False)
    encoded = markup.encode("utf-8") + b"\0"

    blocks: list[np.ndarray] = []
    starts: list[tuple[str, int]] = []

    def on_synth(wav: ctypes._Pointer, n_samples: int, events: ctypes._Pointer) -> int:
        if wav and n_samples > 0:
            blocks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                starts.append((name, event.audio_position))
            i += 1
        return 0  # continue synthesis

    callback = _SynthCallback(on_synth)  # referenced until espeak is unloaded
    with _lock, _Session() as session:
        session.lib.espeak_SetSynthCallback(callback)
        if session.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakError(f"espeak refused voice {voice!r}")
        for param, value in (
            (_PARAM_RATE, rate_wpm),
            (_PARAM_PITCH, pitch),
            (_PARAM_RANGE, pitch_range),
            (_PARAM_VOLUME, 100),
            (_PARAM_WORDGAP, word_gap_10ms),
        ):
            if session.lib.espeak_SetParameter(param, value, 0) != _EE_OK:
                raise EspeakError(f"espeak refused parameter {param}={value}")
        flags = _CHARS_UTF8 | (_SSML if ssml else 0)
        session.lib.espeak_ng_SetRandSeed(_NOISE_SEED)
        _libc().srand(_NOISE_SEED)
        status = session.lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, flags, None, None)
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed with status {status}")
        native_rate_hz = session.sample_rate_hz

    pcm = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)
    audio = resample(pcm.astype(np.float32) / 32768.0, native_rate_hz, OUTPUT_SAMPLE_RATE_HZ)
    duration_ms = 1000.0 * audio.size / OUTPUT_SAMPLE_RATE_HZ
    return Synthesis(audio=audio, phonemes=_contiguous(starts, duration_ms))


def _contiguous(starts: list[tuple[str, int]], duration_ms: float) -> tuple[Phoneme, ...]:
    """Turn (mnemonic, start_ms) events into contiguous phonemes.

    Each phoneme ends where the next starts and the last at the end of the
    audio. Zero-length ones (espeak reports a closing ``_`` pause at the very
    end, and a pause boundary and the next phoneme can share a millisecond)
    carry no time and are dropped.
    """
    phonemes: list[Phoneme] = []
    for i, (name, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else duration_ms
        end = min(float(end), duration_ms)
        if end > start:
            phonemes.append(Phoneme(name, float(start), end))
    return tuple(phonemes)
