"""Tiny models of the same classes as the Hub presets, built from configs (seeded): nothing is downloaded."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Examples' cached results (demo/widgets.cached_examples) in a folder of this run, not in the working tree; the apps
# the tests start do not make them ahead of time (tests/test_first_visit.py does, for one tab).
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="examples-cache-"))
os.environ.setdefault("PREFILL_EXAMPLES", "0")
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots and other things to look at (git-ignored)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's, driven by Playwright: no downloaded browser

WORDS = ["a", "an", "the", "red", "green", "blue", "circle", "square", "dog", "cat", "on", "background", "tone", "high", "low",
         "moving", "left", "right", "top", "bottom", "small", "large", "beat", "drum", "fast", "slow"]


def clip_parts(dim: int = 32):
    import torch
    from tokenizer import build_tokenizer
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = build_tokenizer(WORDS, model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=dim, intermediate_size=37,
                                                num_hidden_layers=1, num_attention_heads=4, max_position_embeddings=16,
                                                bos_token_id=0, eos_token_id=1, pad_token_id=1))
    return tokenizer, text_encoder


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> str:
    """A tiny StableDiffusionPipeline folder (32x32 px, 8x8 latents)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer, text_encoder = clip_parts()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8), layers_per_block=1,
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        norm_num_groups=8, sample_size=32)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    path = tmp_path_factory.mktemp("tiny-sd")
    pipe.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_mel(tmp_path_factory) -> str:
    """A tiny MelDiffusionPipeline folder (the bundled audio model's classes: CLIP + UNet on mel patches)."""
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel

    from pipelines.mel_diffusion import GriffinLimVocoder, MelDiffusionPipeline

    tokenizer, text_encoder = clip_parts()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=(8, 4), in_channels=16, out_channels=16, layers_per_block=1,
                                block_out_channels=(16, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=4, norm_num_groups=8)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
                              clip_sample=False, set_alpha_to_one=False)
    vocoder = GriffinLimVocoder(n_mels=16, n_iter=4)
    pipe = MelDiffusionPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler,
                                vocoder=vocoder, patch_size=4)
    path = tmp_path_factory.mktemp("tiny-mel")
    pipe.save_pretrained(path, safe_serialization=True)
    return str(path)


@pytest.fixture(scope="session")
def tiny_audioldm(tmp_path_factory) -> str:
    """A tiny AudioLDMPipeline folder (CLAP text encoder, Roberta tokenizer, HiFi-GAN vocoder)."""
    import torch
    from diffusers import AudioLDMPipeline, AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import (
        ClapTextConfig,
        ClapTextModelWithProjection,
        RobertaTokenizer,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
    )

    torch.manual_seed(0)
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "Ġ"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["Ġ" + w for w in WORDS]
    merges = []
    for w in WORDS:  # each word (with its leading-space marker) becomes one token
        parts = ["Ġ"] + list(w)
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            merges.append(pair)
            if pair[0] + pair[1] not in vocab:
                vocab.append(pair[0] + pair[1])
            parts = [pair[0] + pair[1]] + parts[2:]
    merges = list(dict.fromkeys(merges))
    tokenizer = RobertaTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges, model_max_length=16)
    text_encoder = ClapTextModelWithProjection(ClapTextConfig(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=8, intermediate_size=37, num_attention_heads=1,
        num_hidden_layers=1, vocab_size=len(vocab) + 8, projection_dim=8, max_position_embeddings=32))
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=8, sample_size=32,
                                in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=(8, 16),
                                class_embed_type="simple_projection", projection_class_embeddings_input_dim=8,
                                class_embeddings_concat=True)
    vae = AutoencoderKL(block_out_channels=[8, 16], in_channels=1, out_channels=1, norm_num_groups=8, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16, upsample_rates=[2, 2],
        upsample_kernel_sizes=[4, 4], resblock_kernel_sizes=[3, 7], resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        normalize_before=False))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    pipe = AudioLDMPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            vocoder=vocoder)
    path = tmp_path_factory.mktemp("tiny-audioldm")
    pipe.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_animatediff(tmp_path_factory, tiny_sd) -> tuple[str, str]:
    """(image model folder, MotionAdapter folder) for a tiny AnimateDiffPipeline on the tiny SD model."""
    import torch
    from diffusers import MotionAdapter

    torch.manual_seed(0)
    adapter = MotionAdapter(block_out_channels=(16, 32), motion_layers_per_block=1, motion_norm_num_groups=8,
                            motion_num_attention_heads=2, motion_max_seq_length=16, use_motion_mid_block=False)
    path = tmp_path_factory.mktemp("tiny-motion")
    adapter.save_pretrained(path)
    return tiny_sd, str(path)


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory) -> str:
    """A tiny LlamaForCausalLM + a small BPE tokenizer with a chat template (the SmolLM2 / Qwen code path)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = ["the quick brown fox jumps over the lazy dog", "a diffusion model refines noise step by step",
              "a language model writes one token at a time", "hello world, how are you today?"] * 10
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>",
                                        unk_token="<unk>", pad_token="<|endoftext|>")
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                               "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id,
                                         bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id))
    path = tmp_path_factory.mktemp("tiny-llm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_masked_chat(tmp_path_factory, tiny_llm) -> str:
    """A Hub-style masked LM: model + tokenizer (with a chat template and a mask token) in one folder."""
    import torch
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    tokenizer.add_special_tokens({"mask_token": "<|mask|>"})
    torch.manual_seed(0)
    model = ModernBertForMaskedLM(ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id, cls_token_id=tokenizer.bos_token_id, sep_token_id=tokenizer.eos_token_id))
    path = tmp_path_factory.mktemp("tiny-masked-chat")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def bundled():
    """(demo, pipelines) of the real app on the bundled preset, launched once on a free local port."""
    from app import build_app
    from demo.blocks import launch_kwargs
    from settings import Settings

    demo, pipelines = build_app(Settings(preset="bundled", device="cpu"))
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True, **launch_kwargs(demo))
    yield demo, pipelines
    demo.close()


@pytest.fixture(scope="session")
def client(bundled):
    from gradio_client import Client

    # 30 s for each HTTP call rather than httpx's 5: in full runs, where this one server has served every module before,
    # a /cancel took more than 5 s to answer twice (cause not found; test_hostile's cancel test reports the time)
    return Client(bundled[0].local_url, verbose=False, httpx_kwargs={"timeout": 30})


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium through Playwright, launched once for every browser test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()
