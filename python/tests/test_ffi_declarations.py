"""The ctypes declarations against include/tollgate.h, the source of truth.

Every function in the header must be declared in ``tollgate._ffi.DECLARATIONS`` with the
restype/argtypes its C prototype maps to (and nothing declared that the header lacks); every
struct's size, alignment and field offsets must match what a C compiler computes from the header;
enum values and macros must match the package's constants.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from ctypes import POINTER

import pytest

import tollgate
from tollgate import _ffi, errors
from tollgate.decision import FLAG_FAIL_OPEN, FLAG_SHADOW, Outcome

from conftest import HEADER

BASE_TYPES = {
    "uint64_t": ctypes.c_uint64,
    "uint32_t": ctypes.c_uint32,
    "uint16_t": ctypes.c_uint16,
    "uint8_t": ctypes.c_uint8,
    "int64_t": ctypes.c_int64,
    "int32_t": ctypes.c_int32,
    "size_t": ctypes.c_size_t,
    "bool": ctypes.c_bool,
    "char": ctypes.c_char,
    "tg_status": ctypes.c_uint32,  # a uint32_t typedef before C23
    "tg_outcome": ctypes.c_uint32,
    "tg_full_policy": ctypes.c_uint32,
    "tg_pace_action": ctypes.c_uint32,
    "tg_jitter": ctypes.c_uint32,
    "tg_retry_class": ctypes.c_uint32,
    "tg_next_action": ctypes.c_uint32,
    "tg_give_up": ctypes.c_uint32,
    "tg_release_action": ctypes.c_uint32,
}


# A struct in the header: `typedef struct [TG_ALIGNED(n)] NAME { ... } NAME;`.
STRUCT_BODY = r"typedef struct (?:TG_ALIGNED\(\d+\) )?%s \{(.*?)\} %s;"


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_functions(text: str) -> dict[str, tuple[str, list[str]]]:
    """name → (return type, [parameter types]) for every tg_* prototype."""
    code = strip_comments(text)
    code = re.sub(r"^\s*#.*$", " ", code, flags=re.M)
    functions = {}
    pattern = re.compile(r"([A-Za-z_][\w\s\*]*?)\b(tg_\w+)\s*\(([^;{}()]*)\)\s*;")
    for match in pattern.finditer(code):
        ret, name, params = match.groups()
        ret = " ".join(ret.split())
        if ret.startswith("typedef"):
            continue
        types = []
        params = " ".join(params.split())
        if params and params != "void":
            for param in params.split(","):
                param = param.strip()
                # drop the parameter's name (the last identifier)
                m = re.match(r"(.*?)(\w+)$", param)
                assert m, param
                types.append(" ".join(m.group(1).split()))
        functions[name] = (ret, types)
    return functions


def ctype_of(c_type: str) -> object:
    """The ctypes type a C type string maps to."""
    t = c_type.replace("const ", "").strip()
    pointers = t.count("*")
    t = t.replace("*", "").strip()
    if t.startswith("struct "):
        t = t[len("struct ") :]
    if pointers == 0:
        if t in BASE_TYPES:
            return BASE_TYPES[t]
        if t in _ffi.STRUCTS:  # passed or returned by value
            return _ffi.STRUCTS[t]
        if t in _ffi.CALLBACKS:
            return _ffi.CALLBACKS[t]
        if t == "void":
            return None
        raise AssertionError(f"no ctypes mapping for C type {c_type!r}")
    if pointers == 2:
        assert t in _ffi.STRUCTS, c_type
        return POINTER(POINTER(_ffi.STRUCTS[t]))
    assert pointers == 1, c_type
    if t == "char":
        return ctypes.c_char_p
    if t == "void":
        return ctypes.c_void_p
    if t in _ffi.STRUCTS:
        return POINTER(_ffi.STRUCTS[t])
    if t in BASE_TYPES:
        return POINTER(BASE_TYPES[t])
    raise AssertionError(f"no ctypes mapping for C type {c_type!r}")


def macros(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#define\s+(TG_\w+)\s+(.+?)\s*$", text, flags=re.M))


def test_parser_sees_the_whole_header(header_text: str) -> None:
    funcs = parse_functions(header_text)
    # Every prototype-looking line of the header was parsed.
    assert len(funcs) == len(
        set(re.findall(r"\b(tg_\w+)\(", strip_comments(header_text))) - {"tg_read_counter"}
    )
    assert funcs["tg_bucket_decide"] == (
        "tg_status",
        ["struct tg_bucket *", "uint64_t", "uint64_t", "struct tg_decision *"],
    )
    assert funcs["tg_version_number"] == ("uint32_t", [])


def test_every_header_function_is_declared(header_text: str) -> None:
    funcs = parse_functions(header_text)
    missing = sorted(set(funcs) - set(_ffi.DECLARATIONS))
    extra = sorted(set(_ffi.DECLARATIONS) - set(funcs))
    assert not missing, f"header functions without a ctypes declaration: {missing}"
    assert not extra, f"declared but not in include/tollgate.h: {extra}"


def test_every_declaration_matches_its_prototype(header_text: str) -> None:
    funcs = parse_functions(header_text)
    wrong = []
    for name, (ret, params) in funcs.items():
        restype, argtypes = _ffi.DECLARATIONS[name]
        want = (ctype_of(ret), [ctype_of(p) for p in params])
        if (restype, list(argtypes)) != want:
            wrong.append(
                f"{name}: declared {restype}, {argtypes}; header says {ret}({', '.join(params)})"
            )
    assert not wrong, "\n".join(wrong)


def test_the_loaded_functions_carry_the_declarations() -> None:
    for name, (restype, argtypes) in _ffi.DECLARATIONS.items():
        func = getattr(_ffi.lib, name)
        assert func.restype is restype, name
        assert list(func.argtypes) == list(argtypes), name


def test_struct_word_counts_match_the_header(header_text: str) -> None:
    m = macros(header_text)
    for cname, struct in _ffi.STRUCTS.items():
        if cname in _ffi.PUBLIC_STRUCTS or cname == "tg_table":
            continue
        words = int(m[f"TG_{cname[3:].upper()}_WORDS"])
        assert ctypes.sizeof(struct) == 8 * words, cname
        assert ctypes.alignment(struct) == 8, cname
        body = re.search(STRUCT_BODY % (cname, cname), header_text, re.S)
        assert body, cname
        fields = re.findall(r"(\w+)\s+(\w+)(\[\w+\])?;", strip_comments(body.group(1)))
        assert fields == [("uint64_t", "_private", f"[TG_{cname[3:].upper()}_WORDS]")], cname


@pytest.mark.parametrize("cname", _ffi.PUBLIC_STRUCTS)
def test_public_struct_fields_match_the_header(header_text: str, cname: str) -> None:
    body = re.search(STRUCT_BODY % (cname, cname), header_text, re.S)
    assert body, cname
    fields = re.findall(r"(\w+)\s+(\w+)(?:\[(\w+)\])?;", strip_comments(body.group(1)))
    declared = [(name, ctype) for name, ctype in _ffi.STRUCTS[cname]._fields_]
    assert [n for _, n, _ in fields] == [n for n, _ in declared]

    def ctype(t: str, size: str) -> object:
        if not size:
            return BASE_TYPES[t]
        defined = re.search(r"#define %s (\d+)" % size, header_text)
        return BASE_TYPES[t] * int(defined.group(1) if defined else size)

    assert [ctype(t, size) for t, _, size in fields] == [c for _, c in declared]


def test_every_header_struct_is_mapped(header_text: str) -> None:
    named = set(re.findall(r"typedef struct (?:TG_ALIGNED\(\d+\) )?(tg_\w+)", header_text))
    assert named == set(_ffi.STRUCTS)


@pytest.mark.skipif(
    shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler"
)
def test_layouts_match_what_a_c_compiler_computes(tmp_path) -> None:
    """sizeof/alignof/offsetof from the real header, compiled, against ctypes."""
    cc = shutil.which("gcc") or shutil.which("cc")
    lines = []
    for cname, struct in _ffi.STRUCTS.items():
        if cname == "tg_table":
            continue
        lines.append(
            f'printf("{cname} %zu %zu\\n", sizeof(struct {cname}), _Alignof(struct {cname}));'
        )
        for field, _ in struct._fields_:
            lines.append(f'printf("{cname}.{field} %zu\\n", offsetof(struct {cname}, {field}));')
    src = tmp_path / "layout.c"
    src.write_text(
        '#include <stdio.h>\n#include <stddef.h>\n#include "tollgate.h"\nint main(void) {\n'
        + "\n".join(lines)
        + "\nreturn 0;\n}\n"
    )
    exe = tmp_path / "layout"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Werror", "-I", str(HEADER.parent), str(src), "-o", str(exe)],
        check=True,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    c_side = {}
    for line in out.splitlines():
        key, *nums = line.split()
        c_side[key] = tuple(int(n) for n in nums)
    for cname, struct in _ffi.STRUCTS.items():
        if cname == "tg_table":
            continue
        assert c_side[cname] == (ctypes.sizeof(struct), ctypes.alignment(struct)), cname
        for field, _ in struct._fields_:
            assert c_side[f"{cname}.{field}"] == (getattr(struct, field).offset,), (
                f"{cname}.{field}"
            )


def test_status_values_match_the_header(header_text: str) -> None:
    values = {n: int(v) for n, v in re.findall(r"(TG_STATUS_\w+) = (\d+)", header_text)}
    assert values == {name: code for code, name in errors.STATUS_NAMES.items()}
    # and the library's own descriptions exist for each
    for code in values.values():
        assert _ffi.lib.tg_status_str(code)
    assert _ffi.lib.tg_status_str(9999) == b"unknown status"


def test_outcome_values_match_the_header(header_text: str) -> None:
    values = {n: int(v) for n, v in re.findall(r"TG_OUTCOME_(\w+) = (\d+)", header_text)}
    assert values == {o.name: o.value for o in Outcome}


def test_macros_match_the_package(header_text: str) -> None:
    m = macros(header_text)
    assert int(m["TG_DECISION_SHADOW"]) == FLAG_SHADOW
    assert int(m["TG_DECISION_FAIL_OPEN"]) == FLAG_FAIL_OPEN
    assert m["TG_RETRY_NEVER"] == "UINT64_MAX"
    assert int(m["TG_SLIDING_LOG_CAPACITY"]) == tollgate.SLIDING_LOG_CAPACITY
    assert int(m["TG_WINDOW_MAX_LIMIT"]) == tollgate.WINDOW_MAX_LIMIT
    assert int(m["TG_QUOTA_DEFAULT_MIN_SPAN"]) == tollgate.DEFAULT_MIN_SPAN
    assert int(m["TG_PAGINATION_DEFAULT_MAX_OFFSET"]) == tollgate.pagination.DEFAULT_MAX_OFFSET
    assert int(m["TG_PRESET_SHOPBASE_BURST"]) == tollgate.presets.SHOPBASE_BURST
    assert int(m["TG_PRESET_SHOPBASE_PER_SECOND"]) == tollgate.presets.SHOPBASE_PER_SECOND
    assert int(m["TG_PRESET_SHOPBASE_MAX_OFFSET"]) == tollgate.presets.SHOPBASE_MAX_OFFSET
    assert int(m["TG_PRESET_TIKTOK_SHOP_PER_SECOND"]) == tollgate.presets.TIKTOK_SHOP_PER_SECOND
    assert m["TG_HEADER_SHOP_API_CALL_LIMIT"] == f'"{tollgate.headers.SHOP_API_CALL_LIMIT}"'
    assert m["TG_HEADER_RETRY_AFTER"] == f'"{tollgate.headers.RETRY_AFTER}"'
    assert m["TG_HEADER_RATELIMIT"] == f'"{tollgate.headers.RATELIMIT}"'
    assert m["TG_HEADER_RATELIMIT_POLICY"] == f'"{tollgate.headers.RATELIMIT_POLICY}"'
    assert int(m["TG_VERSION_MAJOR"]) == _ffi.ABI_MAJOR
    assert int(m["TG_VERSION_MINOR"]) == _ffi.ABI_MINOR


def test_library_version_matches_the_header(header_text: str) -> None:
    m = macros(header_text)
    assert tollgate.library_version() == m["TG_VERSION_STRING"].strip('"')
    number = (
        int(m["TG_VERSION_MAJOR"]) * 10000
        + int(m["TG_VERSION_MINOR"]) * 100
        + int(m["TG_VERSION_PATCH"])
    )
    assert _ffi.lib.tg_version_number() == number


def test_client_enums_and_macros_match_the_header(header_text: str) -> None:
    from tollgate import client

    for prefix, enum_cls in [
        ("TG_PACE_ACTION_", client.PaceAction),
        ("TG_JITTER_", client.Jitter),
        ("TG_RETRY_CLASS_", client.RetryClass),
        ("TG_NEXT_ACTION_", client.NextAction),
        ("TG_GIVE_UP_", client.GiveUp),
        ("TG_RELEASE_ACTION_", client.ReleaseAction),
        ("TG_FULL_POLICY_", tollgate.FullPolicy),
    ]:
        values = {n: int(v) for n, v in re.findall(prefix + r"(\w+) = (\d+)", header_text)}
        assert values, prefix
        assert values == {e.name: e.value for e in enum_cls}, prefix
    m = macros(header_text)
    assert int(m["TG_REQUEST_QUEUE_CAPACITY"]) == client.REQUEST_QUEUE_CAPACITY
    assert int(m["TG_RETRY_BUDGET_SLOTS"]) == client.RETRY_BUDGET_SLOTS
