"""The Hub code paths (StableDiffusion, AudioLDM, AnimateDiff, a Llama-class LLM) on tiny models built from configs."""

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines.audio import AudioPipeline, render_clip
from pipelines.base import AudioOutput, ImageOutput, Step, TextOutput, VideoOutput, final
from pipelines.checks import InvalidInput
from pipelines.image import ImagePipeline
from pipelines.specs import ModelSpec
from pipelines.text import TextPipeline
from pipelines.video import VideoPipeline, frame_prompts, write_mp4

SMALL = {"width": (32, 64, 16), "height": (32, 64, 16), "num_inference_steps": (1, 50)}


@pytest.fixture(scope="module")
def image(tiny_sd):
    return ImagePipeline(ModelSpec(tiny_sd, "test", {"width": 32, "height": 32}, SMALL), device="cpu")


def pixels(out: ImageOutput) -> np.ndarray:
    return np.asarray(out.image, dtype=np.float32)


def test_image_streams_one_step_per_iteration_with_x0_previews(image):
    items = list(image.stream("a red circle", num_inference_steps=3, guidance_scale=2.0, seed=1))
    steps, out = items[:-1], items[-1]
    assert [s.index for s in steps] == [1, 2, 3] and all(s.total == 3 for s in steps)
    assert isinstance(out, ImageOutput) and out.image.size == (32, 32)
    assert all(s.preview.size == (32, 32) for s in steps)
    timesteps = [s.info["timestep"] for s in steps]
    assert timesteps == sorted(timesteps, reverse=True)  # from noise towards clean
    assert [s.elapsed for s in steps] == sorted(s.elapsed for s in steps)


def test_image_is_deterministic_per_seed_and_follows_the_prompt(image):
    a = pixels(final(image.stream("a red circle", num_inference_steps=2, seed=5, preview=False)))
    b = pixels(final(image.stream("a red circle", num_inference_steps=2, seed=5, preview=False)))
    c = pixels(final(image.stream("a red circle", num_inference_steps=2, seed=6, preview=False)))
    d = pixels(final(image.stream("a blue square", num_inference_steps=2, seed=5, preview=False)))
    e = pixels(final(image.stream("a red circle", "blue", num_inference_steps=2, guidance_scale=3.0, seed=5, preview=False)))
    f = pixels(final(image.stream("a red circle", num_inference_steps=2, guidance_scale=3.0, seed=5, preview=False)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, d)
    assert not np.array_equal(e, f)  # the negative prompt takes part with guidance


def test_image_previews_off_means_no_preview(image):
    out = final(image.stream("a red circle", num_inference_steps=2, seed=1, preview=False))
    assert [s.preview for s in out.steps] == [None, None]


def test_image_cancel_stops_the_denoising_loop(image):
    calls = []
    unet = image.pipe.unet
    handle = unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        stream = image.stream("a red circle", num_inference_steps=30, guidance_scale=1.0, seed=1, preview=False)
        for step in stream:
            if step.index == 2:
                break
        stream.close()
    finally:
        handle.remove()
    assert len(calls) <= 3, f"{len(calls)} UNet calls after cancelling at step 2 of 30"
    # ...and the model serves the next request normally
    assert len(final(image.stream("a red circle", num_inference_steps=2, seed=1)).steps) == 2


@contextlib.contextmanager
def batch_sizes(model):
    """The size of each batch `model`'s batcher runs meanwhile."""
    sizes, run = [], model.batcher.run_batch
    model.batcher.run_batch = lambda batch: sizes.append(len(batch)) or run(batch)
    try:
        yield sizes
    finally:
        model.batcher.run_batch = run


def test_concurrent_images_are_one_batch_each_with_its_own_seed_previews_and_cancel(image):
    import threading

    solo = {seed: pixels(final(image.stream("a red circle", "", 4, 3.0, seed, preview=False))) for seed in (1, 2, 3)}
    solo_negative = pixels(final(image.stream("a red circle", "blue", 4, 3.0, 2, preview=False)))
    barrier, results = threading.Barrier(5), {}

    def request(seed, stop_at=None):
        stream = image.stream("a red circle", "blue" if seed == 2 else "", 4, 3.0, seed, preview=seed != 3)
        barrier.wait()
        items = []
        for item in stream:
            items.append(item)
            if stop_at and getattr(item, "index", None) == stop_at:
                stream.close()
                break
        results[seed] = items

    with batch_sizes(image) as sizes:
        with image.lock:  # hold the model so that all four queue up, then go as one batch
            threads = [threading.Thread(target=request, args=(seed, 2 if seed == 4 else None)) for seed in (1, 2, 3, 4)]
            for t in threads:
                t.start()
            barrier.wait()
            time.sleep(0.3)
        for t in threads:
            t.join(60)
    assert sizes == [4]
    outs = {seed: items[-1] for seed, items in results.items()}
    assert np.abs(pixels(outs[1]) - solo[1]).max() <= 1  # its own seed (batched sums differ in the last bits)
    assert np.abs(pixels(outs[3]) - solo[3]).max() <= 1
    mine, without = np.abs(pixels(outs[2]) - solo_negative).max(), np.abs(pixels(outs[2]) - solo[2]).max()
    assert mine <= 1 < without  # its own negative prompt, beside others without one
    assert [s.index for s in outs[1].steps] == [1, 2, 3, 4] and outs[1].steps[-1].preview.size == (32, 32)
    assert outs[1].steps[0].preview is not None  # the first step's preview, then as the preview share allows
    assert all(s.preview is None or s.preview.size == (32, 32) for s in outs[1].steps)
    assert all(s.preview is None for s in outs[3].steps)  # previews off for this one only
    assert [getattr(i, "index", None) for i in results[4]] == [1, 2]  # stopped at its step 2; the others went on
    assert "Seed: 2" in outs[2].recipe and "Negative prompt: blue" in outs[2].recipe


def test_requests_arriving_a_few_ms_apart_on_an_idle_model_are_one_batch(image):
    """Users pressing Generate at once reach the batcher tens of milliseconds apart through the server: the first
    must not start alone (a batch of one, then one of the rest, measured a third slower through the server)."""
    import threading

    with batch_sizes(image) as sizes:
        threads = [threading.Thread(target=final, args=(image.stream("a red circle", "", 2, 3.0, seed, preview=False),))
                   for seed in range(4)]
        for t in threads:  # no lock held: the model is idle when the first arrives
            t.start()
            time.sleep(0.015)
        for t in threads:
            t.join(60)
    assert sizes == [4]


def test_previews_at_most_at_the_rate_asked_the_first_and_last_always(image):
    """A tab asks for no more previews than its screen shows (previews_per_s, the pacer's rate): the other steps go
    without (decoded for nothing, they slowed the image over HTTP by about 15 %), in order, the final image the same."""
    every = final(image.stream("a red circle", "", 6, 3.0, 1))
    sparse = final(image.stream("a red circle", "", 6, 3.0, 1, previews_per_s=1e-3))  # one every 1000 s at most
    assert all(s.preview is not None for s in every.steps)
    assert [s.index for s in sparse.steps] == [1, 2, 3, 4, 5, 6]
    assert [s.index for s in sparse.steps if s.preview is not None] == [1, 6]
    assert np.abs(pixels(sparse) - pixels(every)).max() == 0
    fast = final(image.stream("a red circle", "", 6, 3.0, 1, previews_per_s=1e6))
    assert all(s.preview is not None for s in fast.steps)


def test_a_lone_request_at_one_thread_does_not_wait_for_the_cpu_meter(image, monkeypatch):
    """A batch's thread team is sized by the cores other processes left free, measured over a 50 ms window from when
    it began to gather (CpuMeter); a request alone at one thread runs on one whatever that says, and used to wait out
    the window for nothing. A batch of two (a team of two threads) still asks."""
    import threading

    asked = []
    monkeypatch.setattr(image.batcher, "cores_free", lambda: asked.append(1) or 2)
    final(image.stream("a red circle", "", 2, 3.0, 1, preview=False))
    assert asked == []
    with batch_sizes(image) as sizes:
        with image.lock:  # the two queue up, then go as one batch
            threads = [threading.Thread(target=final, args=(image.stream("a red circle", "", 2, 3.0, seed, preview=False),))
                       for seed in (1, 2)]
            for t in threads:
                t.start()
            time.sleep(0.3)
        for t in threads:
            t.join(60)
    assert sizes == [2] and asked == [1]


def test_the_batch_thread_ends_when_no_request_waits(image):
    """A thread that ran torch keeps libgomp's worker threads, which slow llama.cpp's decodes for as long as it lives
    (DiffusionBatcher._loop): the batcher's thread ends after its last batch, and the next request starts another."""
    import threading

    for seed in (1, 2):
        final(image.stream("a red circle", "", 2, 3.0, seed, preview=False))
        thread = image.batcher.thread
        if thread is not None:
            thread.join(5)
        assert image.batcher.thread is None or not image.batcher.thread.is_alive()
        assert not [t for t in threading.enumerate() if t.name == "diffusion-batcher"]


def test_a_batch_spends_at_most_its_preview_share_decoding_previews(image, monkeypatch):
    """A batch's previews cost a decode per request: it decodes them only while decoding has taken at most
    `tuning.batch_preview_share` of its time, always the first and last step's. A slow decoder shows it."""
    import dataclasses
    import threading

    monkeypatch.setattr(image, "tuning", dataclasses.replace(image.tuning, batch_preview_share=0.25))
    decode, spent = image.decode_previews, []

    def slow_decode(pipe, x0, wanted):
        t = time.perf_counter()
        time.sleep(0.2)
        out = decode(pipe, x0, wanted)
        spent.append(time.perf_counter() - t)
        return out

    monkeypatch.setattr(image, "decode_previews", slow_decode)
    results = {}
    with image.lock:  # both queue up, then go as one batch
        threads = [threading.Thread(target=lambda seed=seed: results.__setitem__(
            seed, final(image.stream("a red circle", "", 12, 3.0, seed)))) for seed in (1, 2)]
        for t in threads:
            t.start()
        time.sleep(0.3)
    for t in threads:
        t.join(60)
    for out in results.values():
        shown = [s.index for s in out.steps if s.preview is not None]
        assert shown[0] == 1 and shown[-1] == 12 and len(shown) < 12, shown
        assert [s.index for s in out.steps] == list(range(1, 13))  # every step is still reported
    assert sum(spent[:-1]) <= 0.25 * results[1].seconds + max(spent), spent  # the last step's decode is extra


@pytest.mark.parametrize("kwargs, match", [
    ({"prompt": ""}, "`prompt`"),
    ({"prompt": "x" * 501}, "`prompt`"),
    ({"num_inference_steps": 0}, "`num_inference_steps`"),
    ({"guidance_scale": -1}, "`guidance_scale`"),
    ({"width": 48 + 8}, "`width` must be a multiple of 16"),
    ({"height": 1024}, "`height`"),
    ({"seed": -3}, "`seed`"),
])
def test_image_bad_input_names_the_field(image, kwargs, match):
    args = {"prompt": "a red circle", "num_inference_steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        final(image.stream(**args))


def test_missing_model_says_so_and_loads_nothing():
    pipe = ImagePipeline(ModelSpec("models/absent", "test"), missing="The bundled image model is missing.", device="cpu")
    with pytest.raises(RuntimeError, match="missing"):
        final(pipe.stream("a red circle", num_inference_steps=2, width=512, height=512))


def test_audioldm_streams_spectrogram_previews_and_a_clip(tiny_audioldm):
    audio = AudioPipeline(ModelSpec(tiny_audioldm, "test", limits={"duration_s": (0.01, 1.0)}), device="cpu")
    items = list(audio.stream("a high tone", duration_s=0.02, num_inference_steps=2, guidance_scale=2.0, seed=0))
    steps, out = items[:-1], items[-1]
    assert len(steps) == 2 and all(s.preview is not None for s in steps)
    assert isinstance(out, AudioOutput) and out.sample_rate == 16000
    assert out.audio.ndim == 1 and abs(len(out.audio) - 0.02 * 16000) <= 16
    wav, spec_img = render_clip(out.audio, out.sample_rate, out.recipe)
    assert wav[:4] == b"RIFF" and spec_img.size[0] > 0
    with pytest.raises(ValueError, match="`duration_s`"):
        final(audio.stream("a high tone", duration_s=5.0))


def test_mel_diffusion_pipeline_loads_streams_and_stops(tiny_mel):
    """The bundled audio model's classes, through AudioPipeline: the same code path as AudioLDM."""
    audio = AudioPipeline(ModelSpec(tiny_mel, "test", limits={"duration_s": (0.1, 4.0)}), device="cpu")
    assert type(audio.pipe).__name__ == "MelDiffusionPipeline"
    items = list(audio.stream("a high tone", duration_s=0.5, num_inference_steps=3, guidance_scale=3.0, seed=0))
    steps, out = items[:-1], items[-1]
    assert [s.index for s in steps] == [1, 2, 3] and all(s.preview is not None for s in steps)
    assert out.sample_rate == 16000 and out.audio.shape == (8000,) and np.isfinite(out.audio).all()
    assert np.abs(out.audio).max() <= 0.8915  # within [-1, 1], at most -1 dBFS (Griffin-Lim alone is unbounded)
    again = final(audio.stream("a high tone", duration_s=0.5, num_inference_steps=3, guidance_scale=3.0, seed=0))
    np.testing.assert_allclose(again.audio, out.audio, atol=1e-5)  # a seed reproduces the clip
    other = final(audio.stream("a low tone", duration_s=0.5, num_inference_steps=3, guidance_scale=3.0, seed=0))
    assert not np.allclose(other.audio, out.audio)  # the prompt reaches the UNet
    stream = audio.stream("a high tone", duration_s=0.5, num_inference_steps=50, seed=0)
    assert next(stream).index == 1
    stream.close()  # stopping cancels the remaining steps; the model is free for the next request
    assert final(audio.stream("a bell", duration_s=0.5, num_inference_steps=2, seed=0)).audio.size == 8000


def test_vocoder_filters_are_the_ones_the_bundled_model_was_trained_with():
    """torchaudio's HTK filterbank is the mel basis saved in models/tiny-sounds-audio (written by the numpy-era
    code): the port changed no mel bin."""
    from safetensors.torch import load_file

    from pipelines.mel_diffusion import mel_filterbank

    folder = Path(__file__).parents[1] / "models" / "tiny-sounds-audio"
    # the Griffin-Lim vocoder holds the basis: `griffin_lim/` beside a learned vocoder, else `vocoder/`
    saved = next((folder / name / "diffusion_pytorch_model.safetensors" for name in ("griffin_lim", "vocoder")
                  if (folder / name / "diffusion_pytorch_model.safetensors").exists()), folder / "missing")
    if not saved.exists():
        pytest.skip("the bundled audio model is not in this checkout")
    basis = load_file(saved)["mel_basis"]  # stored in float16, as the rest of the model
    assert basis.shape == (64, 513)
    ours = mel_filterbank(16000, 1024, 64, 0.0, 8000.0).to(basis.dtype)
    assert (ours.float() - basis.float()).abs().max() <= 2**-10  # within float16's rounding (one step at 1.0)


def test_vocoder_is_deterministic_across_threads():
    """The waveform is a pure function of the mel (Griffin-Lim from zero phase): four threads vocoding at once
    return the same samples, bit for bit."""
    import concurrent.futures

    import torch

    from pipelines.mel_diffusion import GriffinLimVocoder

    vocoder = GriffinLimVocoder(n_iter=8)
    mel = vocoder.encode(torch.randn(1, 8000) * 0.1)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: vocoder(mel, 8000)[0], range(4)))
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_griffin_lim_vocoder_inverts_its_own_mel():
    """encode -> forward keeps what a listener hears: the pitch of a tone and its loudness envelope."""
    import torch
    from sounds import measure

    from pipelines.mel_diffusion import GriffinLimVocoder

    vocoder = GriffinLimVocoder()
    t = np.arange(16000) / 16000
    for freq in (220.0, 1760.0):
        tone = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        mel = vocoder.encode(torch.from_numpy(tone)[None])
        assert mel.shape == (1, 63, 64) and mel.min() >= -1 and mel.max() <= 1
        back = vocoder(mel, 16000, generator=torch.Generator().manual_seed(0))[0].numpy()
        assert back.shape == (16000,)
        assert abs(np.log2(measure(back)["centroid"] / measure(tone)["centroid"])) < 0.2  # within a tone of pitch


def test_animatediff_makes_frames_and_a_playable_mp4(tiny_animatediff, tmp_path):
    base, adapter = tiny_animatediff
    video = VideoPipeline(ModelSpec(base, "test", {"width": 32, "height": 32}, {"num_frames": (2, 8)}, motion_adapter=adapter),
                          device="cpu")
    items = list(video.stream("a red circle moving right", num_frames=4, num_inference_steps=2, guidance_scale=2.0, seed=0))
    steps, out = items[:-1], items[-1]
    assert len(steps) == 2 and steps[0].preview.size == (96, 32)  # first / middle / last frames side by side
    assert isinstance(out, VideoOutput) and len(out.frames) == 4 and out.frames[0].size == (32, 32)
    path = write_mp4(out.frames, out.fps, str(tmp_path / "clip.mp4"))
    head = open(path, "rb").read()
    assert b"ftyp" in head[:32] and b"avc1" in head  # MP4 container with H.264 video
    with pytest.raises(ValueError, match="`num_frames`"):
        final(video.stream("a red circle", num_frames=20))


@pytest.fixture(scope="module")
def llm(tiny_llm):
    return TextPipeline(ModelSpec(tiny_llm, "test", {"max_new_tokens": 8}), device="cpu")


def test_frame_prompts_spread_a_phrase_s_frame_tokens_over_the_clip():
    phrases = {"moving left": 8, "growing": 8}
    assert frame_prompts("A red circle  Moving left", phrases, 8) == {k: f"a red circle moving left@{k}" for k in range(8)}
    long = frame_prompts("a red circle moving left", phrases, 15)  # every other frame; the pipeline interpolates
    assert long == {2 * k: f"a red circle moving left@{k}" for k in range(8)}
    short = frame_prompts("a red circle moving left", phrases, 4)  # first and last token always kept
    assert list(short) == [0, 1, 2, 3] and short[0].endswith("@0") and short[3].endswith("@7")
    assert frame_prompts("a square growing on a red background", phrases, 8)[7] == "a square growing@7 on a red background"
    assert frame_prompts("a red circle", phrases, 8) == {0: "a red circle"}
    assert frame_prompts("a red circle moving leftwards", phrases, 8) == {0: "a red circle moving leftwards"}


def test_llm_streams_one_token_per_step_with_top5(llm):
    items = list(llm.stream("hello world", max_new_tokens=6, temperature=0.8, top_p=1.0, seed=3))
    steps, out = [i for i in items if isinstance(i, Step)], items[-1]
    assert isinstance(out, TextOutput) and 1 <= len(steps) <= 6
    for s in steps:
        probs = [c["probability"] for c in s.info["candidates"]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
        assert 0 < s.info["probability"] <= 1
    assert steps[-1].preview.strip() == out.text
    assert out.finish_reason in ("stop", "length")


def test_llm_seed_makes_sampling_repeatable(llm):
    run = lambda seed: final(llm.stream("the quick", max_new_tokens=8, temperature=1.5, top_p=1.0, seed=seed)).text  # noqa: E731
    assert run(1) == run(1)
    assert len({run(s) for s in range(5)}) > 1


def test_llm_greedy_picks_the_top_candidate(llm):
    out = final(llm.stream("a diffusion model", max_new_tokens=5, temperature=0.0, seed=0))
    for s in out.steps:
        assert s.info["candidates"][0]["probability"] == s.info["probability"]


def test_llm_cancel_stops_generation(llm):
    stream = llm.stream("hello", max_new_tokens=200, temperature=1.0, seed=0)
    seen = 0
    for _ in stream:
        seen += 1
        if seen == 3:
            break
    stream.close()
    assert final(llm.stream("hello", max_new_tokens=3, temperature=0.0)).steps  # still serving


def test_llm_chat_reads_the_earlier_turns(llm):
    history = [{"role": "user", "content": "my name is fox"}, {"role": "assistant", "content": "hello fox"}]
    text = llm.decode(llm.chat_ids("what is my name?", "be brief", history=history), special=True)
    assert text.index("be brief") < text.index("my name is fox") < text.index("hello fox") < text.index("what is my name?")
    assert text.endswith("assistant\n")
    alone = final(llm.stream("what is my name?", max_new_tokens=6, temperature=0.0))
    chat = final(llm.stream("what is my name?", max_new_tokens=6, temperature=0.0, history=history))
    assert chat.steps[0].info["candidates"] != alone.steps[0].info["candidates"]  # the history reached the model


def test_llm_long_chat_keeps_the_newest_turns_that_fit(llm, monkeypatch):
    import pipelines.text as text_module

    history = []
    for i in range(30):
        history += [{"role": "user", "content": f"question {i} " + "hello world " * 5},
                    {"role": "assistant", "content": f"answer {i}"}]
    monkeypatch.setattr(text_module, "MAX_CONTEXT_TOKENS", 200)
    ids = llm.chat_ids("the newest question", "system words", history=history)
    text = llm.decode(ids, special=True)
    assert len(ids) <= 200
    assert "system words" in text and "the newest question" in text and "answer 29" in text
    assert "question 0 " not in text  # the oldest turns went first, a whole pair at a time
    assert text.count("<|im_start|>user") == text.count("<|im_start|>assistant")  # each kept question keeps its answer


@pytest.mark.parametrize("history, match", [
    ("hello", "must be a list"), ([{"role": "robot", "content": "x"}], "message 0"),
    ([{"role": "user", "content": 5}], "message 0"), ([{"role": "user", "content": "x" * 40000}], "limit"),
])
def test_llm_bad_history_names_it(llm, history, match):
    with pytest.raises(ValueError, match=f"`history`.*{match}|{match}.*`history`|`history` {match}"):
        final(llm.stream("hi", history=history))


@pytest.mark.parametrize("kwargs, match", [
    ({"prompt": " "}, "`prompt`"), ({"temperature": 3}, "`temperature`"), ({"top_p": 0}, "`top_p`"),
    ({"max_new_tokens": 0}, "`max_new_tokens`"), ({"prompt": "x" * 5000}, "`prompt`"),
])
def test_llm_bad_input_names_the_field(llm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        final(llm.stream(**{"prompt": "hi", **kwargs}))


def test_understand_and_translate_refuse_unknown_names(llm):
    from pipelines.translation import Translation
    from pipelines.understanding import Understanding

    with pytest.raises(InvalidInput, match="valid: sentiment, entities, keywords, summary") as refused:
        Understanding(llm).understand("some text", "poetry")
    assert refused.value.field == "task"
    with pytest.raises(InvalidInput, match="valid: English, French") as refused:
        final(Translation(llm).stream("hello", "English", "Klingon"))
    assert refused.value.field == "target_language"
    with pytest.raises(InvalidInput, match="`text`"):
        Understanding(llm).understand("   ", "sentiment")


def test_step_previews_go_through_the_preview_decoder_and_the_final_image_through_the_vae(tiny_sd, tmp_path):
    """An AutoencoderTiny (TAESD's class) named by the spec makes the step previews; the final image is the VAE's.
    A preview decoder that cannot load leaves the previews to the VAE, and the request is served all the same."""
    import dataclasses

    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    tiny = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8), decoder_block_out_channels=(8, 8, 8),  # 4x, as the VAE
                           num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1))
    tiny.save_pretrained(tmp_path / "preview")
    spec = ModelSpec(tiny_sd, "test", {"width": 32, "height": 32}, SMALL, preview_decoder=str(tmp_path / "preview"))
    model = ImagePipeline(spec, device="cpu")
    calls = []
    decode = model.preview_decoder().decode
    model._preview.decode = lambda latents: calls.append(latents.shape) or decode(latents)
    out = final(model.stream("a red circle", "", 3, 2.0, 0, 32, 32, preview=True))
    assert len(calls) == 3 and all(s.preview.size == (32, 32) for s in out.steps)  # one preview decode a step
    plain = final(ImagePipeline(dataclasses.replace(spec, preview_decoder=None), device="cpu").stream(
        "a red circle", "", 3, 2.0, 0, 32, 32, preview=False))
    assert pixels(out).tolist() == pixels(plain).tolist()  # the final image is the VAE's, previews or not
    missing = ImagePipeline(dataclasses.replace(spec, preview_decoder=str(tmp_path / "absent")), device="cpu")
    served = final(missing.stream("a red circle", "", 2, 2.0, 0, 32, 32, preview=True))
    assert all(s.preview is not None for s in served.steps) and missing.preview_decoder() is None


def test_the_cpu_meter_counts_other_processes_not_this_one():
    """CpuMeter (how a batch sizes its thread team): a process spinning beside this one counts as about one busy core,
    this process's own spinning does not (it is subtracted), so with both spinning on 2 cores it reads about 1."""
    import subprocess
    import sys

    from pipelines.diffusion import CpuMeter

    if not os.path.exists("/proc/stat"):
        pytest.skip("no /proc/stat here")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        meter = CpuMeter()
        meter.start()
        end = time.monotonic() + 0.3
        while time.monotonic() < end:  # this process busy too
            pass
        busy = meter.busy_elsewhere()
    finally:
        hog.kill()
    assert busy is not None and 0.5 <= busy <= 1.5, busy
