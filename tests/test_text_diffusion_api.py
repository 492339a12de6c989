"""The text-diffusion knobs through the launched app (gradio_client): the dial, revision, infilling, and the two Key
differences experiments built on them."""

import pytest

pytestmark = pytest.mark.slow

PROMPT = "a small red circle on the left on a blue background"


def run(client, **kwargs):
    args = {"prompt": PROMPT, "gen_length": 32, "num_inference_steps": 16, "seed": 0, **kwargs}
    return client.predict(**args, api_name="/text_diffusion")


def test_todays_calls_are_unchanged_and_the_records_carry_the_run(client):
    text, _, progress, stats, records = run(client)[:5]
    assert text and progress["done"] and records["run"]["steps"] == stats["steps"] == len(records["steps"])
    assert records["run"]["block_length"] in (None, 32) and stats["forward_passes"] == stats["steps"]


def test_block_length_one_writes_left_to_right_one_token_per_step(client):
    records = run(client, num_inference_steps=32, block_length=1)[4]
    committed = [[c["position"] for c in s["committed"]] for s in records["steps"]]
    assert all(len(c) == 1 for c in committed) and [c[0] for c in committed] == sorted(c[0] for c in committed)
    whole = run(client, num_inference_steps=8)[4]
    firsts = [min(c["position"] for c in s["committed"]) for s in whole["steps"] if s["committed"]]
    assert firsts != sorted(firsts) or any(len(s["committed"]) > 1 for s in whole["steps"])  # any order, several a step


def test_a_threshold_takes_fewer_steps_and_revision_is_recorded(client):
    fixed = run(client, num_inference_steps=32)[4]["run"]
    eager = run(client, num_inference_steps=32, threshold=0.5)[4]["run"]
    assert eager["steps"] < fixed["steps"] and sum(eager["committed_per_step"]) == sum(fixed["committed_per_step"])
    revised = [run(client, num_inference_steps=8, seed=s, editing_threshold=0.5)[4] for s in range(6)]
    records = [r for out in revised for s in out["steps"] for r in s["revised"]]
    assert records and {"position", "token", "previous", "probability"} <= set(records[0])


def test_infilling_keeps_the_given_words_verbatim(client):
    template = "The picture shows a small _ circle on the _ , set on a _ background ."
    text, _, _, stats, records = client.predict(prompt=PROMPT, template=template, num_inference_steps=8, seed=0,
                                                api_name="/text_diffusion_infill")[:5]
    given = template.split("_")
    assert text.replace(" ,", ",").replace(" .", ".").startswith(given[0].strip())
    for part in given:
        assert part.strip().replace(" ,", ",").replace(" .", ".") in text.replace(" ,", ",").replace(" .", ".")
    assert len(records["run"]["gaps"]) == 3 and stats["steps"] <= 3


def test_a_template_without_a_gap_or_with_unknown_words_is_refused_by_name(client):
    from gradio_client.exceptions import AppError, ValidationError

    with pytest.raises(ValidationError, match=r"- template: `template` needs at least one gap"):
        client.predict(prompt=PROMPT, template="No gaps here.", num_inference_steps=8, seed=0,
                       api_name="/text_diffusion_infill")
    with pytest.raises(AppError, match="words the model never learnt: zebra"):
        client.predict(prompt=PROMPT, template="A _ zebra .", num_inference_steps=8, seed=0,
                       api_name="/text_diffusion_infill")


def test_fill_the_gap_and_the_dial_experiments(client):
    template = "The picture shows a _ red _ on the _ , set on a blue background ."
    diffusion, llm, out = client.predict(prompt=PROMPT, template=template, seed=0, api_name="/fill_gap")
    assert "set on a blue background" in diffusion.replace(" ,", ",") and "_" not in diffusion
    assert llm.startswith("The picture shows a") and out["llm"]["given"] == "The picture shows a"
    rows = client.predict(prompt=PROMPT, seed=0, api_name="/dial")
    table = rows["data"] if isinstance(rows, dict) else rows
    steps = [row[1] for row in table]
    assert len(table) == 5 and steps[0] == 32 and steps[0] > steps[1] and "LLM" in table[-1][0]
