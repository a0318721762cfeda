# Emulates llama.cpp unicode_regex_split (src/unicode.cpp) for its std::regex stages: the "collapsed" text (one
# byte per codepoint category) and the rewritten regex, run with Python re in ASCII mode (same backtracking and
# ordered alternation as ECMAScript for these patterns). Usage: gen_regex_splits.py corpus.jsonl regex-splits.json
import json, re, sys, unicodedata
WS = set(list(range(9, 14)) + [0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])
def cat(cp):
    c = unicodedata.category(chr(cp))
    return {'N': 0xD1, 'L': 0xD2, 'P': 0xD3, 'M': 0xD4, 'S': 0xD5}.get(c[0], 0xD0)
def collapse(cps):
    out = []
    for cp in cps:
        if cp < 128: out.append(chr(cp))
        elif cp in WS: out.append('\x0b')
        else: out.append(chr(cat(cp)))
    return ''.join(out)
UCAT = {r'\p{N}': (0xD1, r'\x30-\x39'), r'\p{L}': (0xD2, r'\x41-\x5A\x61-\x7A'),
        r'\p{P}': (0xD3, r'\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\x5B-\x5D\x5F\x7B\x7D'),
        r'\p{M}': (0xD4, ''), r'\p{S}': (0xD5, r'\x24\x2B\x3C-\x3E\x5E\x60\x7C')}
def collapse_regex(rx):
    out = ''; inside = False; i = 0
    while i < len(rx):
        if rx[i] == '[' and (i == 0 or rx[i-1] != '\\'): out += '['; inside = True; i += 1; continue
        if inside and rx[i] == ']' and rx[i-1] != '\\': out += ']'; inside = False; i += 1; continue
        if rx[i:i+3] == r'\p{' and rx[i:i+5] in UCAT:
            c, m = UCAT[rx[i:i+5]]
            out += ('' if inside else '[') + '\\x%02X' % c + m + ('' if inside else ']'); i += 5; continue
        out += rx[i]; i += 1
    return out
def split(cps, offsets, rx):
    uses = any(k in rx for k in UCAT)
    if uses:
        text = collapse(cps); pat = re.compile(collapse_regex(rx), re.ASCII)
    else:
        text = ''.join('\x0b' if (cp > 0x7F and cp in WS) else chr(cp) for cp in cps); pat = re.compile(rx, re.ASCII)
    res = []; start = 0
    for off in offsets:
        seg = text[start:start+off]; last = 0
        for m in pat.finditer(seg):
            if m.start() > last: res.append(m.start() - last)
            res.append(m.end() - m.start()); last = m.end()
        if last < off: res.append(off - last)
        start += off
    return res
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"  # custom code adds |\s+
KINDS = {
 'gpt2': [GPT2],
 'smollm': [r"\p{N}", GPT2],
 'llama3': [r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
 'bpeDefault': [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
 'qwen2': [r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
 'deepseekV3': [r"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
   r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
 'deepseekCoder': ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}"],
}
out = {}
for kind, rxs in KINDS.items():
    rows = []
    for line in open(sys.argv[1], encoding='utf-8'):
        t = json.loads(line)['text']
        cps = [ord(c) for c in t]
        offs = [len(cps)] if cps else []
        for rx in rxs: offs = split(cps, offs, rx)
        rows.append(offs)
    out[kind] = rows
json.dump(out, open(sys.argv[2], 'w'))
print({k: sum(len(r) for r in v) for k, v in out.items()})
