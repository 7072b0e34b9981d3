"""Scripts: queues, responders, routing by agent and model, and the errors when they run dry."""

from __future__ import annotations

import pytest

from dafx_testing.llm import FakeLLM, Reply, ScriptExhausted, UnmatchedRequest


def _chat(client, system: str, user: str, model: str = "gpt-4o-mini") -> str:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return client.chat.completions.create(model=model, messages=messages).choices[0].message.content


def test_replies_are_served_in_order_then_the_responder_takes_over(fake, openai_client):
    fake.reply("one").reply("two").respond_with(lambda request: f"echo: {request.last_user_message}")
    answers = [_chat(openai_client, "s", f"q{n}") for n in range(4)]
    assert answers == ["one", "two", "echo: q2", "echo: q3"]


def test_responder_may_return_json_or_a_reply(fake, openai_client):
    fake.respond_with(lambda request: {"n": request.index} if request.index == 1 else Reply.text("plain"))
    assert _chat(openai_client, "s", "a") == '{"n": 1}'
    assert _chat(openai_client, "s", "b") == "plain"


def test_agents_are_routed_by_name_or_instructions(fake, openai_client):
    fake.agent("Writer").reply("A draft.")
    fake.agent("Critic", instructions="You review drafts").reply("Approved.")
    assert _chat(openai_client, "You review drafts harshly.", "Review: A draft.") == "Approved."
    assert _chat(openai_client, "You are Writer, a novelist.", "Write.") == "A draft."
    assert [r.agent for r in fake.requests] == ["Critic", "Writer"]
    assert [r.index for r in fake.requests_for("Writer")] == [2]


def test_agent_object_gives_name_and_instructions(fake, openai_client):
    class Agent:  # what fake.agent reads from an Agent Framework agent
        name = "Joker"
        default_options = {"instructions": "You tell jokes."}

    fake.agent(Agent()).reply("Arr!")
    assert _chat(openai_client, "You tell jokes.", "Go") == "Arr!"
    assert fake.last_request.agent == "Joker"


def test_model_lane(fake, openai_client):
    fake.model("gpt-4o").reply("big model")
    fake.reply("default")
    assert _chat(openai_client, "s", "q", model="gpt-4o-mini") == "default"
    assert _chat(openai_client, "s", "q", model="gpt-4o") == "big model"


def test_exhausted_script_names_the_request_and_what_was_served(fixed_clock):
    from openai import OpenAI

    with pytest.raises(ScriptExhausted) as raised, FakeLLM(clock=fixed_clock, strict=False) as fake:
        client = OpenAI(api_key="k", base_url="https://api.test/v1", max_retries=0)
        fake.agent("Joker").reply("Why did the pirate...")
        _chat(client, "You are Joker.", "Tell me a joke.")
        _chat(client, "You are Joker.", "Explain it.")
    message = str(raised.value)
    assert "request #2" in message and "agent 'Joker'" in message and "'Explain it.'" in message
    assert "#1 reply 'Why did the pirate...'" in message and ".respond_with" in message


def test_unmatched_request_lists_the_scripts(fake, openai_client):
    fake.agent("Writer").reply("A draft.")
    with pytest.raises(UnmatchedRequest) as raised:
        _chat(openai_client, "You are Critic.", "Review it.")
    message = str(raised.value)
    assert "no declared agent" in message and "'Review it.'" in message
    assert "agent 'Writer' (recognised by its name in the system message): served 0, 1 queued" in message
    assert "You are Critic." in message
    fake.errors.clear()  # handled here; otherwise the fake re-raises it on exit


def test_swallowed_script_errors_are_raised_on_exit(fixed_clock):
    from openai import OpenAI

    with pytest.raises(ScriptExhausted, match="re-raises it on exit"):
        with FakeLLM(clock=fixed_clock):
            try:
                _chat(OpenAI(api_key="k", base_url="https://api.test/v1", max_retries=0), "s", "q")
            except ScriptExhausted:
                pass  # an app that swallows errors, as the durable agent entity does


def test_assert_all_used_names_leftover_replies(fake, openai_client):
    fake.reply("used").reply("never asked for")
    _chat(openai_client, "s", "q")
    with pytest.raises(AssertionError, match="the default script: served 1, 1 queued"):
        fake.assert_all_used()


def test_a_checkpoint_puts_the_scripts_back_as_they_were(fake, openai_client):
    fake.reply("one").fault("server_error")
    fake.agent("Writer").reply("A draft.")
    restore = fake.checkpoint()
    with pytest.raises(Exception, match="500"):
        _chat(openai_client, "s", "q")                     # the fault is used up
    assert _chat(openai_client, "s", "q") == "one"
    assert _chat(openai_client, "You are Writer.", "w") == "A draft."
    fake.agent("Critic").reply("added later")

    restore()

    with pytest.raises(Exception, match="500"):
        _chat(openai_client, "s", "q")
    assert _chat(openai_client, "s", "q") == "one"
    assert _chat(openai_client, "You are Writer.", "w") == "A draft."
    assert [lane.agent for lane in fake._router.lanes] == ["Writer"]   # "Critic" came later
