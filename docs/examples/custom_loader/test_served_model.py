"""The model behind LLAMA_SERVER_URL, measured, stored and gated like any other pytest-tee benchmark."""


def test_served_decode(tokens_per_second):
    result = tokens_per_second(prompt_tokens=128, new_tokens=32)

    assert result["decode_tps"].median > 0
