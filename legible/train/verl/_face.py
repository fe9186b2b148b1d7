"""A separate, frozen Face behind an OpenAI-compatible server, called as the episode's ``generate``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legible.train.verl._episode import Sampled

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class OpenAIFace:
    """A separate, frozen Face behind an OpenAI-compatible completions endpoint (``vllm serve <face>``),
    for conditions with ``face: true``. It reads the policy's token ids as its prompt, so it must share the
    policy's tokenizer (a copy of the policy's initial checkpoint does); its text answer is encoded with the
    policy's tokenizer to sit, masked, in the response."""

    def __init__(
        self,
        base_url: str,
        model: str,
        tokenizer: PreTrainedTokenizerBase,
        *,
        api_key: str = "EMPTY",
        client: Any = None,
    ) -> None:
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(base_url=base_url, api_key=api_key)
        self.client, self.model, self.tokenizer = client, model, tokenizer

    async def __call__(self, prompt_ids: list[int], params: dict[str, Any]) -> Sampled:
        reply = await self.client.completions.create(
            model=self.model,
            prompt=prompt_ids,
            max_tokens=params["max_tokens"],
            temperature=params.get("temperature", 1.0),
            top_p=params.get("top_p", 1.0),
            stop=params.get("stop"),
        )
        text = reply.choices[0].text
        return Sampled(list(self.tokenizer(text, add_special_tokens=False).input_ids))
