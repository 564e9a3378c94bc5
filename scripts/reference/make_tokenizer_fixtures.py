"""Tokenizer fixtures made by the Hugging Face `tokenizers` library (pip install tokenizers).

Trains two small byte-level BPE tokenizers on varied text and writes, for each, the
`tokenizer.json` and the library's own ids and decodes of a corpus of hostile strings
(unicode, emoji, CJK, whitespace runs, digits, special tokens). The Swift tests load the
json and must reproduce the ids exactly and decode back to the same strings.

  gpt2_style:  ByteLevel pre-tokenizer with the GPT-2 regex, <|endoftext|> special.
  llama3_style: Split with the Llama 3 regex (Isolated) + ByteLevel without regex,
               NFC normalizer, ignore_merges, a BOS added by TemplateProcessing.

Usage: python3 scripts/reference/make_tokenizer_fixtures.py Tests/Fixtures/tokenizers
"""
import json, os, sys
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, normalizers, processors, Regex

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")

TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "def tokenize(text):\n    return [ord(c) for c in text]\n\nclass Model:\n    pass\n",
    "Numbers: 0 1 12 123 1234 12345 3.14159 -42 1e10 2026-12-01",
    "Unicode: café naïve résumé Ångström Straße façade coöperate",
    "Emoji: 😀😃😄 🚀 👩‍💻 🇫🇷 ❤️ ✨",
    "CJK: 你好世界，这是一个测试。日本語のテキストです。한국어 텍스트",
    "Whitespace:  two  spaces\tand\ttabs\n\nnew lines   \n  trailing   ",
    "It's we're they've I'm you'll he'd — “quotes” ‘single’ «guillemets»",
    "Mixed CASE Words and ALLCAPS and camelCase and snake_case_names",
] * 20

CORPUS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing spaces   ",
    "tabs\tand\nnewlines\r\nand\n\n\nblank lines",
    "Numbers 1234567890 and 3.14159 and -42 and 007",
    "café naïve résumé — “quoted” text",
    "emoji 😀🚀👩‍💻🇫🇷❤️ end",
    "你好，世界！日本語テキスト 한국어",
    "It's they're we've I'M YOU'LL she'D",
    "<|endoftext|>",
    "before<|endoftext|>after <|endoftext|> spaced",
    "unseen: ẞ ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∮ ∞ ≠ ∀x∈ℝ",
    "e\u0301 combining vs \u00e9 precomposed",
    "a" * 50 + " " + "ab" * 20,
    "     ",
    "\n",
    "mixed<|endoftext|><|endoftext|>twice",
]

def train(style):
    tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3_style")))
    if style == "gpt2_style":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>"] if style == "gpt2_style" else ["<|begin_of_text|>", "<|endoftext|>"]
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    if style == "llama3_style":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                                           special_tokens=[("<|begin_of_text|>", bos)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok

def main(out):
    os.makedirs(out, exist_ok=True)
    for style in ["gpt2_style", "llama3_style"]:
        tok = train(style)
        tok.save(os.path.join(out, f"{style}.tokenizer.json"))
        cases = []
        for text in CORPUS:
            with_special = tok.encode(text).ids
            plain = tok.encode(text, add_special_tokens=False).ids
            cases.append({"text": text, "ids": plain, "ids_with_special_tokens": with_special,
                          "decoded": tok.decode(plain, skip_special_tokens=False),
                          "decoded_skipping_special": tok.decode(plain, skip_special_tokens=True)})
        with open(os.path.join(out, f"{style}.cases.json"), "w", encoding="utf-8") as f:
            json.dump({"library": "tokenizers", "cases": cases}, f, ensure_ascii=False, indent=1)
        print(style, "vocab", tok.get_vocab_size(), "cases", len(cases))

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/tokenizers")
