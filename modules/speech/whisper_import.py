"""A CTranslate2 Whisper model (faster-whisper's format) as a transformers directory, converted once and cached.

``model.bin`` (layout in ``read_ctranslate2``) holds fused tensors under CTranslate2's names; this module
derives a ``WhisperConfig`` from their shapes and the shipped ``config.json``, splits the fused attention
projections back into transformers' q/k/v, builds the processor from ``tokenizer.json`` and the feature
settings, and writes ``save_pretrained`` output. Every CTranslate2 variable must land somewhere and every
transformers tensor must be set, or the conversion fails (a silently random tensor would only show up as
bad transcripts). The result is cached under ``$RECIPES_CACHE/whisper/<key>`` (default ``~/.cache/recipes``),
keyed by the source file's path, size and modification time, and written to a temporary folder that is
renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from recipes.modules.errors import ConfigError

if TYPE_CHECKING:
    from transformers import WhisperConfig

__all__ = ["read_ctranslate2", "whisper_config", "ctranslate2_to_hf", "convert_ctranslate2_whisper", "cache_root"]

CONVERTER_VERSION = 1  # bump when the output changes, so old caches are not reused
_DTYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16, 5: torch.bfloat16}
# CTranslate2's Whisper spec scalars and the only values transformers' Whisper implements.
_EXPECTED_SCALARS = {
    "decoder/activation": 3,
    "decoder/alibi": 0,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/start_from_zero_embedding": 0,
}
_INFO_SCALARS = ("decoder/alignment_heads", "decoder/alignment_layer")  # CTranslate2's own alignment defaults
# transformers submodule inside a layer -> (CTranslate2 scope, part, parts): fused tensors split along dim 0.
_LAYER = {
    "self_attn.q_proj": ("self_attention/linear_0", 0, 3),
    "self_attn.k_proj": ("self_attention/linear_0", 1, 3),
    "self_attn.v_proj": ("self_attention/linear_0", 2, 3),
    "self_attn.out_proj": ("self_attention/linear_1", 0, 1),
    "self_attn_layer_norm": ("self_attention/layer_norm", 0, 1),
    "encoder_attn.q_proj": ("attention/linear_0", 0, 1),
    "encoder_attn.k_proj": ("attention/linear_1", 0, 2),
    "encoder_attn.v_proj": ("attention/linear_1", 1, 2),
    "encoder_attn.out_proj": ("attention/linear_2", 0, 1),
    "encoder_attn_layer_norm": ("attention/layer_norm", 0, 1),
    "fc1": ("ffn/linear_0", 0, 1),
    "fc2": ("ffn/linear_1", 0, 1),
    "final_layer_norm": ("ffn/layer_norm", 0, 1),
}
_TOP = {
    "model.encoder.conv1": "encoder/conv1",
    "model.encoder.conv2": "encoder/conv2",
    "model.encoder.embed_positions": "encoder/position_encodings",
    "model.encoder.layer_norm": "encoder/layer_norm",
    "model.decoder.embed_tokens": "decoder/embeddings",
    "model.decoder.embed_positions": "decoder/position_encodings",
    "model.decoder.layer_norm": "decoder/layer_norm",
    "proj_out": "decoder/projection",
}
_HF_KEY = re.compile(r"model\.(encoder|decoder)\.layers\.(\d+)\.(.+)")


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ConfigError(
                f"{self.path} ends early (byte {self.pos} of {len(self.data)})",
                "the file is truncated; copy the model again",
            )
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def num(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.num("H")).rstrip(b"\0").decode("utf-8")


def read_ctranslate2(model_bin: str | os.PathLike) -> tuple[str, dict[str, Tensor], dict[str, str]]:
    """(spec name, variables, aliases) of a CTranslate2 ``model.bin``.

    Little-endian: u32 version, spec name (u16 length with NUL, bytes), u32 revision, u32 count, then per
    variable its name, u8 rank, rank x u32 shape, u8 dtype, u32 byte count, the bytes; then u32 count of
    (alias, target) name pairs. Floating-point tensors come back as float32.
    """
    path = Path(model_bin)
    r = _Reader(path.read_bytes(), path)
    version = r.num("I")
    if not 1 <= version <= 6:
        raise ConfigError(
            f"{path} has CTranslate2 format version {version}, not 1-6", "convert the model with CTranslate2 >= 3"
        )
    spec = r.string() if version >= 2 else ""
    r.num("I")  # the spec revision: the variable names below are what this converter checks
    variables: dict[str, Tensor] = {}
    for _ in range(r.num("I")):
        name = r.string()
        shape = [r.num("I") for _ in range(r.num("B"))]
        code = r.num("B")
        if code not in _DTYPES:
            raise ConfigError(
                f"{path}: variable {name} has unknown dtype code {code}", "convert the model with a current CTranslate2"
            )
        raw = r.take(r.num("I"))
        tensor = (
            torch.frombuffer(bytearray(raw), dtype=_DTYPES[code]).reshape(shape)
            if raw
            else torch.empty(shape, dtype=_DTYPES[code])
        )
        variables[name] = tensor.float() if tensor.is_floating_point() else tensor
    aliases = {r.string(): r.string() for _ in range(r.num("I"))} if r.pos < len(r.data) else {}
    return spec, variables, aliases


def _layer_count(variables: dict[str, Tensor], side: str) -> int:
    return len({m.group(1) for name in variables if (m := re.match(rf"{side}/layer_(\d+)/", name))})


def whisper_config(variables: dict[str, Tensor], ct2_config: dict, tokens: dict[str, int]) -> "WhisperConfig":
    """The ``WhisperConfig`` that the variables' shapes, the spec's scalars and CTranslate2's config.json describe."""
    from transformers import WhisperConfig

    def get(name: str) -> Tensor:
        if name not in variables:
            raise ConfigError(f"model.bin has no variable {name}", "this converter reads CTranslate2 Whisper models")
        return variables[name]

    for name, want in _EXPECTED_SCALARS.items():
        if int(get(name)) != want:
            raise ConfigError(
                f"model.bin sets {name}={int(get(name))}; transformers' Whisper needs {want}",
                "convert a standard Whisper model",
            )
    for name in _INFO_SCALARS:
        get(name)
    embed = get("decoder/embeddings/weight")
    if not {"<|endoftext|>", "<|startoftranscript|>"} <= set(tokens):
        raise ConfigError(
            "tokenizer.json lacks <|endoftext|> or <|startoftranscript|>",
            "use the tokenizer shipped with this Whisper model",
        )
    eot, sot = tokens["<|endoftext|>"], tokens["<|startoftranscript|>"]
    return WhisperConfig(
        vocab_size=embed.shape[0],
        d_model=embed.shape[1],
        num_mel_bins=get("encoder/conv1/weight").shape[1],
        encoder_layers=_layer_count(variables, "encoder"),
        decoder_layers=_layer_count(variables, "decoder"),
        encoder_attention_heads=int(get("encoder/num_heads")),
        decoder_attention_heads=int(get("decoder/num_heads")),
        encoder_ffn_dim=get("encoder/layer_0/ffn/linear_0/weight").shape[0],
        decoder_ffn_dim=get("decoder/layer_0/ffn/linear_0/weight").shape[0],
        max_source_positions=get("encoder/position_encodings/encodings").shape[0],
        max_target_positions=get("decoder/position_encodings/encodings").shape[0],
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        bos_token_id=sot,
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        activation_function="gelu",
        tie_word_embeddings=True,
    )


def _source(key: str) -> tuple[str, int, int]:
    """The CTranslate2 variable, part and number of parts that a transformers state-dict key comes from."""
    module, leaf = key.rsplit(".", 1)
    if m := _HF_KEY.fullmatch(module):
        side, index, sub = m.groups()
        if sub not in _LAYER:
            raise ConfigError(
                f"no CTranslate2 source for transformers tensor {key}",
                "update modules/speech/whisper_import.py for this Whisper variant",
            )
        scope, part, parts = _LAYER[sub]
        scope = f"{side}/layer_{index}/{scope}"
    elif module in _TOP:
        scope, part, parts = _TOP[module], 0, 1
    else:
        raise ConfigError(
            f"no CTranslate2 source for transformers tensor {key}",
            "update modules/speech/whisper_import.py for this Whisper variant",
        )
    if "layer_norm" in module:
        leaf = {"weight": "gamma", "bias": "beta"}[leaf]
    elif "embed_positions" in module:
        leaf = "encodings"
    return f"{scope}/{leaf}", part, parts


def ctranslate2_to_hf(variables: dict[str, Tensor], aliases: dict[str, str], config) -> dict[str, Tensor]:
    """transformers' state dict for ``config``, every tensor taken from ``variables`` (see the module docstring)."""
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        expected = WhisperForConditionalGeneration(config).state_dict()
    names = {**aliases, **{n: n for n in variables}}
    used: dict[str, tuple[int, set[int]]] = {}
    state: dict[str, Tensor] = {}
    for key, ref in expected.items():
        name, part, parts = _source(key)
        if name not in names:
            raise ConfigError(
                f"transformers tensor {key} needs CTranslate2 variable {name}, which model.bin lacks",
                "convert a complete Whisper model",
            )
        target = names[name]
        chunk = variables[target].chunk(parts, dim=0)[part] if parts > 1 else variables[target]
        if tuple(chunk.shape) != tuple(ref.shape):
            raise ConfigError(
                f"{name} gives {key} shape {tuple(chunk.shape)}, transformers expects {tuple(ref.shape)}",
                "the model.bin does not match a Whisper layout",
            )
        state[key] = chunk.contiguous().clone()
        used.setdefault(target, (parts, set()))[1].add(part)
    for name, (parts, taken) in used.items():
        # CTranslate2 fuses q/k/v biases with zeros for k (Whisper's k_proj has none); only zeros may stay behind.
        for part in set(range(parts)) - taken:
            if variables[name].chunk(parts, dim=0)[part].abs().max() > 0:
                raise ConfigError(
                    f"{name} has a nonzero key bias, which Whisper's k_proj does not have",
                    "convert a standard Whisper model",
                )
    scalars = set(_EXPECTED_SCALARS) | set(_INFO_SCALARS) | {"encoder/num_heads", "decoder/num_heads"}
    unused = sorted(n for n in variables if n not in used and n not in scalars)
    missing = sorted(set(expected) - set(state))
    if unused or missing:
        raise ConfigError(
            f"conversion left CTranslate2 variables unused {unused[:5]} / transformers tensors unset {missing[:5]}",
            "update modules/speech/whisper_import.py for this Whisper variant",
        )
    return state


def _processor(src: Path, tokenizer, config):
    from tokenizers import AddedToken
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    vocabulary = (src / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    if len(vocabulary) != config.vocab_size:
        raise ConfigError(
            f"vocabulary.txt has {len(vocabulary)} tokens, model.bin {config.vocab_size}",
            "use the vocabulary shipped with this model.bin",
        )
    known = len(tokenizer)
    if vocabulary[:known] != tokenizer.convert_ids_to_tokens(list(range(known))):
        raise ConfigError(
            "tokenizer.json and vocabulary.txt disagree on token ids", "use the files shipped together with model.bin"
        )
    # Timestamp tokens (<|0.00|> ... <|30.00|>) exist in the vocabulary but not in tokenizer.json.
    tokenizer.add_tokens(
        [AddedToken(t, lstrip=False, rstrip=False, normalized=False, special=False) for t in vocabulary[known:]]
    )
    features = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    return WhisperProcessor(feature_extractor=features, tokenizer=tokenizer)


def _generation_config(config, tokenizer, ct2_config: dict):
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    gen = GenerationConfig(
        decoder_start_token_id=config.decoder_start_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        suppress_tokens=config.suppress_tokens,
        begin_suppress_tokens=config.begin_suppress_tokens,
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_length=config.max_target_positions,
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=config.vocab_size >= 51865,  # openai/whisper's own test for multilingual checkpoints
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads", [])],
    )
    if gen.is_multilingual:
        gen.lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in ct2_config.get("lang_ids", [])}
        gen.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
    return gen


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where converted models live: ``cache_dir``, else ``$RECIPES_CACHE/whisper``, else
    ``~/.cache/recipes/whisper``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("RECIPES_CACHE", "~/.cache/recipes")).expanduser() / "whisper"


def _cache_key(model_bin: Path) -> str:
    st = model_bin.stat()
    text = f"{model_bin.resolve()}|{st.st_size}|{st.st_mtime_ns}|v{CONVERTER_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write(src: Path, out: Path) -> None:
    from transformers import WhisperForConditionalGeneration, WhisperTokenizer

    ct2_config = json.loads((src / "config.json").read_text()) if (src / "config.json").is_file() else {}
    spec, variables, aliases = read_ctranslate2(src / "model.bin")
    if spec != "WhisperSpec":
        raise ConfigError(
            f"{src / 'model.bin'} holds a {spec or 'version-1'} model, not WhisperSpec",
            "give a CTranslate2 Whisper model directory",
        )
    if any(not t.is_floating_point() for n, t in variables.items() if t.ndim > 0):
        raise ConfigError(
            f"{src / 'model.bin'} is quantized to integers",
            "convert it with CTranslate2's --quantization float16 or float32",
        )
    tokenizer = WhisperTokenizer(tokenizer_file=str(src / "tokenizer.json"))
    config = whisper_config(variables, ct2_config, tokenizer.get_vocab())
    state = ctranslate2_to_hf(variables, aliases, config)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=True, assign=True)
    if not torch.equal(state["proj_out.weight"], state["model.decoder.embed_tokens.weight"]):
        raise ConfigError(
            "model.bin's output projection differs from its token embeddings",
            "transformers' Whisper ties them; convert a standard Whisper model",
        )
    model.tie_weights()
    processor = _processor(src, tokenizer, config)
    model.generation_config = _generation_config(config, processor.tokenizer, ct2_config)
    model.save_pretrained(out)
    processor.save_pretrained(out)


def convert_ctranslate2_whisper(src_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The transformers directory for the CTranslate2 Whisper model in ``src_dir`` (converted once, then reused)."""
    src = Path(src_dir).expanduser()
    for need in ("model.bin", "tokenizer.json", "vocabulary.txt"):
        if not (src / need).is_file():
            raise ConfigError(
                f"{src} has no {need}",
                "give a CTranslate2 Whisper directory (model.bin, config.json, tokenizer.json, vocabulary.txt)",
            )
    root = cache_root(cache_dir)
    final = root / _cache_key(src / "model.bin")
    if (final / "config.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        _write(src, tmp)
        (tmp / "SOURCE").write_text(f"{src.resolve()}\n")
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same conversion first
            if not (final / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
