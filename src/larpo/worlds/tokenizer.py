"""The character tokenizer of the embedded worlds: digits, + - * =, and special tokens, built
with `tokenizers` and wrapped as a transformers tokenizer."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

CHARS = list("0123456789+-*=")
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"


def build_tokenizer():
    """A character-level tokenizer built with `tokenizers`, wrapped as a transformers tokenizer.

    It prepends ``<s>`` to every encoded text, pads on the left (for batched generation) and
    saves/loads with ``save_pretrained`` / ``AutoTokenizer.from_pretrained`` like a hub tokenizer.
    """
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK, *CHARS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok.decoder = decoders.Fuse()  # characters join back without spaces
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
