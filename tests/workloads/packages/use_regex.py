"""python3-regex: the _regex C extension (pattern, match, scanner and splitter types)."""
import regex

p = regex.compile(r"(?P<word>\w+)\s(?P=word)")
print(p.search("hello hello world").group("word"), p.pattern)
print(regex.findall(r"(?:cat){e<=1}", "cat cut cast dog"), regex.sub(r"\d+", "#", "a1b22c333"))
print([m.span() for m in regex.finditer(r"\p{Lu}", "aBcDe")], regex.split(r"[,;]", "a,b;c"))
print(regex.match(r"(?r)\d+", "abc123").group(0) if regex.match(r"(?r)\d+", "abc123") else None,
      regex.fullmatch(r"\X+", "e\u0301"))
scanner = regex.compile(r"\d").scanner("1a2")
print(scanner.match(), regex.escape("a.b"))
try:
    regex.compile("(")
except regex.error as e:
    print("error", type(e).__name__)
