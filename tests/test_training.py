"""The training scripts run end to end on a few steps, and what they save loads through the app's code
paths: the image script's StableDiffusionPipeline folder; the video script's MotionAdapter, LoRA (fused
into the UNet) and new words, on a tiny image model."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from safetensors.torch import load_file

from pipelines.base import final
from pipelines.specs import ModelSpec
from pipelines.video import VideoPipeline

pytestmark = [pytest.mark.training, pytest.mark.slow]


def test_train_image_saves_a_pipeline_the_image_tab_loads(tmp_path):
    from shapes import VOCABULARY

    from pipelines.image import ImagePipeline

    out = tmp_path / "image"
    subprocess.run([sys.executable, str(ROOT / "training" / "train_image.py"), "--out", str(out), "--num-images", "64",
                    "--vae-steps", "2", "--decoder-steps", "2", "--unet-steps", "3", "--batch-size", "4"],
                   check=True, capture_output=True, timeout=600)
    info = json.loads((out / "training_info.json").read_text())
    assert (info["unet_steps"], info["vae_steps"], info["decoder_steps"], info["precision"]) == (3, 2, 2, "bf16")
    assert info["vocabulary"] == VOCABULARY
    # fp16 safetensors only, no pickles; the VAE's scaling factor makes the training latents unit-variance.
    assert not list(out.rglob("*.bin"))
    assert all(t.dtype == torch.float16 for f in out.rglob("*.safetensors") for t in load_file(f).values())
    assert json.loads((out / "vae" / "config.json").read_text())["scaling_factor"] != 0.18215

    image = ImagePipeline(ModelSpec(str(out), "test", {"width": 64, "height": 64},
                                    {"width": (64, 64, 16), "height": (64, 64, 16)}),
                          device="cpu")
    assert set(VOCABULARY) <= set(image.vocabulary)
    result = final(image.stream("a red circle", "", 2, 2.0, 0, 64, 64, preview=False))
    assert result.image.size == (64, 64)


def test_train_video_saves_what_the_video_pipeline_loads(tiny_sd, tmp_path):
    from diffusers import UNet2DConditionModel

    out = tmp_path / "motion"
    subprocess.run([sys.executable, str(ROOT / "training" / "train_video.py"), "--image-model", tiny_sd, "--out", str(out),
                    "--num-clips", "4", "--steps", "3", "--batch-size", "2", "--lr", "1e-2", "--threads", "1"],
                   check=True, capture_output=True, timeout=600)
    assert {"config.json", "diffusion_pytorch_model.safetensors", "pytorch_lora_weights.safetensors",
            "words.safetensors", "training_info.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "training_info.json").read_text())["steps"] == 3
    # The temporal layers trained: their output projections start at zero (identity blocks) and moved.
    adapter = load_file(out / "diffusion_pytorch_model.safetensors")
    proj_out = [v for k, v in adapter.items() if k.endswith("proj_out.weight")]
    assert proj_out and all(v.abs().max() > 0 for v in proj_out)

    video = VideoPipeline(ModelSpec(tiny_sd, "test", {"width": 32, "height": 32}, {"num_frames": (2, 8)},
                                    motion_adapter=str(out)), device="cpu")
    pipe = video.pipe
    # Each motion phrase has one token per frame, carrying its trained embedding.
    tokens = pipe.tokenizer.convert_ids_to_tokens(pipe.tokenizer("a red circle moving up@2").input_ids)
    assert tokens[4] == "moving up@2", tokens
    assert video.frame_phrases["moving up"] == 8 and len(video.frame_phrases) == 6
    table = pipe.text_encoder.get_input_embeddings().weight
    for word, embedding in load_file(out / "words.safetensors").items():
        torch.testing.assert_close(table[pipe.tokenizer.convert_tokens_to_ids(word)], embedding[0].float())
    # The LoRA is fused into the spatial cross-attention, and no LoRA layers are left to slow inference.
    base = UNet2DConditionModel.from_pretrained(tiny_sd, subfolder="unet")
    fused = pipe.unet.down_blocks[1].attentions[0].transformer_blocks[0].attn2.to_k.weight
    assert not torch.equal(fused, base.down_blocks[1].attentions[0].transformer_blocks[0].attn2.to_k.weight)
    assert not any("lora" in name for name, _ in pipe.unet.named_modules())
    assert {"moving up", "growing"} <= set(video.vocabulary)

    clip = final(video.stream("a red circle moving up", num_frames=4, num_inference_steps=2, guidance_scale=2.0, seed=0))
    assert len(clip.frames) == 4 and clip.frames[0].size == (32, 32)
