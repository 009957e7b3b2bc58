#!/usr/bin/env python3
"""The house's map and sizes, checked over src/ (standard library only).

  check_structure.py [--root DIR]   check the tree at DIR (default: this file's repository)
  check_structure.py --self-test    check the checker on small snippets

Every problem is one line, `path:line: what`, and the exit code is 1 when there is any:

- an `#include "x/..."` in src/<folder>/ names a folder outside <folder>'s DEPS closure, as
  src/CMakeLists.txt declares it (affinity_cc_library(NAME ... DEPS affinity::...), and for an
  executable its target_link_libraries);
- a source file under src/ (.h, .cc, .cc.in) has more than MAX_FILE_LINES lines;
- a function body under src/ spans more than MAX_FUNCTION_LINES lines, from the line that names
  the function to its closing brace (a lambda counts as part of the function it is written in).
"""

import argparse
import bisect
import os
import re
import sys
import tempfile

MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 120
SOURCE_SUFFIXES = (".h", ".cc", ".cc.in")
# Functions allowed over MAX_FUNCTION_LINES for now, as "path:name". Keep it empty.
ALLOWED_LONG_FUNCTIONS = set()


# --------------------------------------------------------------------------- the map


def _strip_cmake_comments(text):
    out = []
    for line in text.splitlines():
        in_quote = False
        cut = len(line)
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                in_quote = not in_quote
            elif ch == "#" and not in_quote:
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def _cmake_calls(text, command):
    """The whitespace-separated arguments of every call of `command` in text, in order."""
    calls = []
    for m in re.finditer(r"\b%s\s*\(" % re.escape(command), text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        calls.append(text[m.end():i - 1].split())
    return calls


def _keyword_values(args, keyword, keywords):
    values, on = [], False
    for a in args:
        if a in keywords:
            on = a == keyword
        elif on:
            values.append(a)
    return values


def read_map(cmake_path):
    """{folder: set of folders its DEPS name directly} from src/CMakeLists.txt."""
    with open(cmake_path, encoding="utf-8") as f:
        text = _strip_cmake_comments(f.read())
    deps = {}
    lib_keywords = ("NAME", "SRCS", "DEPS")
    for args in _cmake_calls(text, "affinity_cc_library"):
        names = _keyword_values(args, "NAME", lib_keywords)
        if not names:
            continue
        deps[names[0]] = {d.split("::", 1)[1] for d in _keyword_values(args, "DEPS", lib_keywords)
                          if d.startswith("affinity::")}
    # An executable's folder is its sources' folder; its DEPS are what it links.
    links = {}
    for args in _cmake_calls(text, "target_link_libraries"):
        if args:
            links.setdefault(args[0], set()).update(a.split("::", 1)[1] for a in args[1:]
                                                    if a.startswith("affinity::"))
    for args in _cmake_calls(text, "add_executable"):
        if not args:
            continue
        for src in args[1:]:
            if "/" in src and not src.startswith("$"):
                deps.setdefault(src.split("/", 1)[0], set()).update(links.get(args[0], set()))
    return deps


def closure(deps, folder):
    seen, frontier = set(), [folder]
    while frontier:
        f = frontier.pop()
        if f not in seen:
            seen.add(f)
            frontier.extend(deps.get(f, ()))
    return seen


# --------------------------------------------------------------------------- C++ text


_TOKEN = re.compile(r"""
    (?P<comment> //(?:[^\n\\]|\\.)*            # a line comment (a backslash at its end continues it)
               | /\*.*?(?:\*/|\Z))             # a block comment
  | (?P<raw> \b(?:u8|u|U|L)?R"(?P<delim>[^()\\\s"]{0,16})\(.*?(?:\)(?P=delim)"|\Z))
  | (?P<quoted> "(?:[^"\\\n]|\\.)*"? | '(?:[^'\\\n]|\\.)*'?)
  | (?<![\w.])\.?\d(?:[eEpP][+-]|[\w.'])*       # a pp-number, so that 1'000 holds no character literal
""", re.S | re.X)
_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank_token(m):
    text = m.group(0)
    if m.lastgroup is None:  # a number
        return text
    if m.group("comment"):
        return _NOT_NEWLINE.sub(" ", text)
    if m.group("raw") or m.group("quoted"):  # keep the quotes, blank what they hold
        first = 1 if m.group("quoted") else text.index('"') + 1
        last = len(text) - 1 if len(text) > first and text[-1] == text[first - 1] else len(text)
        return text[:first] + _NOT_NEWLINE.sub(" ", text[first:last]) + text[last:]
    return text


def mask(text):
    """text with comments and the contents of string and character literals (raw ones too)
    turned to spaces, newlines kept, so that every offset and line stays where it was."""
    return _TOKEN.sub(_blank_token, text)


def blank_preprocessor(masked):
    """masked with every preprocessor directive (and its continuation lines) turned to spaces."""
    lines = masked.split("\n")
    cont = False
    for k, line in enumerate(lines):
        if cont or line.lstrip().startswith("#"):
            cont = line.endswith("\\")
            lines[k] = " " * len(line)
    return "\n".join(lines)


def includes(text, masked):
    """[(line, path)] of the file's #include "path" directives."""
    found = []
    original = text.split("\n")
    for k, line in enumerate(masked.split("\n")):
        if re.match(r"\s*#\s*include\b", line):
            m = re.match(r'\s*#\s*include\s*"([^"]+)"', original[k])
            if m:
                found.append((k + 1, m.group(1)))
    return found


# --------------------------------------------------------------------------- functions

_CALL_LIKE_KEYWORDS = {"if", "while", "for", "switch", "catch", "return", "sizeof", "alignof", "decltype",
                       "noexcept", "requires", "alignas", "__attribute__", "static_assert", "throw", "typeid",
                       "operator", "__declspec", "new", "delete"}
_QUALIFIERS = {"const", "volatile", "noexcept", "override", "final", "mutable", "&", "&&", "try"}


_BRACES = re.compile(r"[{}]")
_HEAD_ENDS = re.compile(r"[;{}]")


def _match_brace(code, i):
    """The index of the brace closing the one at i (or len(code) when it is never closed)."""
    depth = 0
    for m in _BRACES.finditer(code, i):
        depth += 1 if m.group(0) == "{" else -1
        if depth == 0:
            return m.start()
    return len(code)


def _top_level_groups(head):
    """[(start, end)] of the parenthesised groups at the head's top level."""
    groups, depth, start = [], 0, 0
    for k, ch in enumerate(head):
        if ch in "([{":
            if depth == 0 and ch == "(":
                start = k
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and ch == ")":
                groups.append((start, k))
    return groups


def _top_level_assignment(head):
    """The offset of the head's first `=` outside brackets that is no comparison, or None."""
    depth = 0
    for k, ch in enumerate(head):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "=" and depth == 0:
            if head[k - 1:k] in ("=", "!", "<", ">", "+", "-", "*", "/", "%", "&", "|", "^") or \
                    head[k + 1:k + 2] == "=":
                continue
            if re.search(r"\boperator\s*\S*$", head[:k]):
                continue
            return k
    return None


def _unbalanced(head):
    return head.count("(") != head.count(")") or head.count("[") != head.count("]")


def _strip_template(head):
    m = re.match(r"\s*template\s*<", head)
    while m:
        depth, k = 0, m.end() - 1
        while k < len(head):
            depth += {"<": 1, ">": -1}.get(head[k], 0)
            k += 1
            if depth == 0:
                break
        head = head[k:]
        m = re.match(r"\s*template\s*<", head)
    return head


def _is_function_tail(tail):
    """Whether what follows a parameter list can end a function's head."""
    t = tail.strip()
    while t:
        m = re.match(r"(noexcept|throw)\s*(\(.*?\))?|\[\[.*?\]\]|(\w+|&&|&)", t)
        if t.startswith("->") or t.startswith("requires") or (t.startswith(":") and not t.startswith("::")):
            return True
        if not m or (m.group(3) and m.group(3) not in _QUALIFIERS):
            return False
        t = t[m.end():].lstrip()
    return True


def _function_name(before):
    m = re.search(r"(operator\s*(\(\)|\[\]|[^\w\s(]+)|operator\s+[\w:<>*& ]+?|~?\s*[A-Za-z_]\w*)\s*$", before)
    if not m:
        return None
    name = re.sub(r"\s+", "", m.group(1)) if "operator" not in m.group(1) else m.group(1).strip()
    q = re.search(r"((?:[A-Za-z_]\w*\s*(?:<[^(){};]*?>)?\s*::\s*)+)$", before[:m.start()])
    if q:
        name = re.sub(r"\s+", "", q.group(1)) + name
    return name


def classify(head):
    """What a brace after head opens: ('scope', name, is_class) for a namespace, class or extern
    block; ('function', name, offset of its name in head) for a function body or a lambda bound
    to a name; ('skip',) for a brace inside the head's brackets or a constructor's member
    initialiser, and ('init',) for any other initialiser."""
    if _unbalanced(head):
        return ("skip",)
    body = _strip_template(head)
    offset = len(head) - len(body)
    body = re.sub(r"^\s*((public|private|protected)\s*:\s*)+", lambda m: " " * len(m.group(0)), body)
    if re.match(r"\s*(inline\s+)?namespace\b", body) or re.match(r'\s*extern\s*"\s*"\s*$', body):
        m = re.search(r"namespace\s+([\w:]+)", body)
        return ("scope", m.group(1) if m else "", False)
    groups = _top_level_groups(body)
    first_paren = groups[0][0] if groups else len(body)
    eq = _top_level_assignment(body)
    kw = re.search(r"\b(class|struct|union|enum)\b", body)
    if kw and kw.start() < min(first_paren, len(body) if eq is None else eq):
        m = re.match(r"(?:class|struct|union|enum)\s+(?:class\s+|struct\s+)?(?:\[\[.*?\]\]\s*)?(\w+)",
                     body[kw.start():])
        return ("scope", m.group(1) if m else "", True)
    if eq is not None:  # a variable: a lambda bound to it is measured as a function
        if re.match(r"\s*\[", body[eq + 1:]):
            name = _function_name(body[:eq])
            if name:
                return ("function", name, offset + body.rfind(name.split("::")[-1], 0, eq))
        return ("init",)
    for start, end in groups:
        before = body[:start]
        name = _function_name(before)
        if not name or name.split("::")[-1] in _CALL_LIKE_KEYWORDS:
            continue
        tail = body[end + 1:]
        if not _is_function_tail(tail):
            continue
        stripped = tail.strip()
        if stripped.startswith(":") and re.search(r"[\w>]\s*$", tail):
            return ("skip",)  # a constructor's member initialiser: the body follows a ) or a }
        last = name.split("::")[-1].lstrip("~")
        return ("function", name, offset + before.rfind(last))
    return ("init",)


def functions(masked):
    """[(name, first line, last line)] of the function bodies in masked text; first is the line
    that names the function, last the line of its closing brace."""
    code = blank_preprocessor(masked)
    line_starts = [0] + [m.end() for m in re.finditer("\n", code)]
    found = []

    def line_at(offset):
        return bisect.bisect_right(line_starts, offset)

    def scan(i, classes):
        head_start = i
        while True:
            m = _HEAD_ENDS.search(code, i)
            if not m:
                return len(code)
            i = m.start()
            ch = code[i]
            if ch == ";":
                head_start = i + 1
            elif ch == "}":
                return i
            elif ch == "{":
                kind = classify(code[head_start:i])
                if kind[0] == "scope":
                    i = scan(i + 1, classes + [kind[1]] if kind[2] else classes)
                    head_start = i + 1
                elif kind[0] == "function":
                    end = _match_brace(code, i)
                    found.append(("::".join(classes + [kind[1]]), line_at(head_start + kind[2]), line_at(end)))
                    i = end
                    head_start = i + 1
                else:  # an initialiser, or a brace inside the head: the head goes on after it
                    i = _match_brace(code, i)
            i += 1

    i = 0
    while i < len(code):  # a stray } at file level ends nothing: go on after it
        i = scan(i, []) + 1
    return found


# --------------------------------------------------------------------------- the check


def check_file(rel, text, folder, deps, folders, counts):
    problems = []
    masked = mask(text)
    lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    if lines > MAX_FILE_LINES:
        problems.append("%s:%d: %d lines; a source file has at most %d" % (rel, lines, lines, MAX_FILE_LINES))
    counts["largest"] = max(counts.get("largest", (0, "")), (lines, rel))
    reach = closure(deps, folder)
    for line, path in includes(text, masked):
        target = path.split("/", 1)[0]
        if "/" not in path or target not in folders:
            continue
        counts["includes"] = counts.get("includes", 0) + 1
        if target not in reach:
            problems.append("%s:%d: includes \"%s\", but %s's DEPS in src/CMakeLists.txt do not reach %s "
                            "(%s reaches: %s)" % (rel, line, path, folder, target, folder,
                                                  ", ".join(sorted(reach))))
    for name, first, last in functions(masked):
        span = last - first + 1
        counts["longest"] = max(counts.get("longest", (0, "")), (span, "%s:%d %s" % (rel, first, name)))
        if span > MAX_FUNCTION_LINES and "%s:%s" % (rel, name) not in ALLOWED_LONG_FUNCTIONS:
            problems.append("%s:%d: function %s spans %d lines (%d-%d); a function has at most %d" %
                            (rel, first, name, span, first, last, MAX_FUNCTION_LINES))
    return problems


def check_tree(root, counts=None):
    counts = {} if counts is None else counts
    src = os.path.join(root, "src")
    deps = read_map(os.path.join(src, "CMakeLists.txt"))
    folders = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    problems = []
    for folder in folders:
        if folder not in deps:
            problems.append("src/%s: a folder that src/CMakeLists.txt declares no library or executable for"
                            % folder)
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith(SOURCE_SUFFIXES):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            parts = rel.split("/")
            if len(parts) < 3:
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            counts["files"] = counts.get("files", 0) + 1
            problems.extend(check_file(rel, text, parts[1], deps, set(folders), counts))
    return problems


# --------------------------------------------------------------------------- self-test

_SELF_TEST_CMAKE = """
# a comment naming affinity_cc_library(NAME ghost DEPS affinity::top)
affinity_cc_library(NAME low SRCS low/a.cc DEPS absl::status)
affinity_cc_library(NAME mid SRCS mid/b.cc DEPS affinity::low fmt::fmt)
affinity_cc_library(NAME top
  SRCS top/c.cc
  DEPS affinity::mid)
affinity_cc_library(NAME side SRCS side/d.cc DEPS affinity::low)
add_executable(tool app/main.cc app/more.cc)
target_link_libraries(tool PRIVATE affinity::top spdlog::spdlog)
"""


def _body(lines):
    return "".join("  x += %d;\n" % k for k in range(lines))


def _self_test_cases():
    """(name, files, expected problem fragments) — an empty list expects a clean tree."""
    tricky = (
        '// a } in a comment, and a { too\n'
        '/* and { here\n } */\n'
        'const char* kBrace = "}}}{";\n'
        "const char kOpen = '{';\n"
        "const char kQuote = '\\'';\n"
        'const char* kRaw = R"x(}}} " )" {)x";\n'
        "constexpr long kBig = 2'592'000;\n"
        "#define OPEN {\n"
    )
    return [
        ("a clean tree", {
            "low/a.cc": '#include "low/a.h"\n#include "absl/status/status.h"\nint F() {\n' + _body(117) + "}\n",
            "mid/b.cc": '#include "low/a.h"\n#include "mid/b.h"\n',
            "top/c.cc": '#include "low/a.h"\n#include "mid/b.h"\n#include <vector>\n',
            "app/main.cc": '#include "top/c.h"\n#include "low/a.h"\n',
        }, []),
        ("an include across the map", {
            "mid/b.cc": '#include "low/a.h"\n\n#include "top/c.h"\n',
        }, ['src/mid/b.cc:3: includes "top/c.h"']),
        ("an include of a sibling folder", {
            "side/d.cc": '#include "mid/b.h"\n',
        }, ['src/side/d.cc:1: includes "mid/b.h"']),
        ("an executable's include outside what it links", {
            "app/more.cc": '#include "side/d.h"\n',
        }, ['src/app/more.cc:1: includes "side/d.h"']),
        ("an include in a comment is no include", {
            "low/a.cc": '// #include "top/c.h"\n/*\n#include "top/c.h"\n*/\n',
        }, []),
        ("a 121-line function", {
            "low/a.cc": "namespace affinity {\nint Long(int x) {\n" + _body(119) + "}\n}  // namespace affinity\n",
        }, ["src/low/a.cc:2: function Long spans 121 lines"]),
        ("a 120-line function", {
            "low/a.cc": "namespace affinity {\nint Fits(int x) {\n" + _body(118) + "}\n}  // namespace affinity\n",
        }, []),
        ("braces in strings, characters, comments and directives do not end a function", {
            "low/a.cc": tricky + "int Tricky(int x) {\n" + tricky.replace("#define", "  #define") +
                        _body(110) + "}\nint After() { return 0; }\n",
        }, ["function Tricky spans 121 lines"]),
        ("a method in a class, a constructor's initialisers and a lambda", {
            "low/a.cc": ("namespace affinity {\nclass Box {\n public:\n  Box(int a) : a_{a}, b_(a) {\n" + _body(119) +
                         "  }\n  int a_{0};\n  int b_;\n};\n"
                         "Box::Box(const Box& o) : a_{o.a_}, b_{[] { return 1; }()} {\n" + _body(119) + "}\n"
                         "const auto kLambda = [](int x) {\n" + _body(119) + "};\n"
                         "bool operator==(const Box& a, const Box& b) {\n" + _body(119) + "}\n"
                         "}  // namespace affinity\n"),
        }, ["src/low/a.cc:4: function Box::Box spans 121 lines",
            "src/low/a.cc:128: function Box::Box spans 121 lines",
            "function kLambda spans 121 lines",
            "function operator== spans 121 lines"]),
        ("a lambda inside a function is part of it", {
            "low/a.cc": "void Outer() {\n  auto f = [] {\n" + _body(60) + "  };\n" + _body(57) + "}\n",
        }, ["function Outer spans 121 lines"]),
        ("a 501-line file", {
            "low/a.h": "// line\n" * 501,
        }, ["src/low/a.h:501: 501 lines"]),
        ("a folder without a library", {
            "stray/e.cc": "",
        }, ["src/stray: a folder that src/CMakeLists.txt declares no library"]),
    ]


def self_test():
    failures = 0
    for name, files, expected in _self_test_cases():
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(os.path.join(root, "src"))
            with open(os.path.join(root, "src", "CMakeLists.txt"), "w") as f:
                f.write(_SELF_TEST_CMAKE)
            for folder in ("low", "mid", "top", "side", "app"):
                os.makedirs(os.path.join(root, "src", folder), exist_ok=True)
            for rel, text in files.items():
                path = os.path.join(root, "src", rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(text)
            problems = check_tree(root)
        missing = [e for e in expected if not any(e in p for p in problems)]
        unexpected = [p for p in problems if not any(e in p for e in expected)]
        if missing or unexpected or len(problems) != len(expected):
            failures += 1
            print("self-test FAILED: %s" % name)
            for e in missing:
                print("  expected a problem with: %s" % e)
            for p in problems:
                print("  found: %s" % p)
    if failures:
        return 1
    print("self-test: %d cases pass" % len(_self_test_cases()))
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    counts = {}
    problems = check_tree(args.root, counts)
    for p in problems:
        print(p)
    largest, longest = counts.get("largest", (0, "")), counts.get("longest", (0, ""))
    print("structure: %d files, %d includes checked; largest file %s (%d lines); longest function %s (%d lines)"
          % (counts.get("files", 0), counts.get("includes", 0), largest[1], largest[0], longest[1], longest[0]))
    if problems:
        print("structure: %d problem(s): see docs/architecture.md, \"The folders\"" % len(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
