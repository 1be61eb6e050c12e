"""Image types: class lookup, built-ins, TOML/JSON/Ganbreeder files, choosing."""

import json

import numpy as np
import pytest

from ganclip import imagetypes as it
from ganclip.errors import BadInputError, ImageTypeError

LATENT = [round(0.01 * i - 0.6, 2) for i in range(it.DIM_Z)]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def toml_list(values):
    return "[" + ", ".join(repr(v) for v in values) + "]"


def assert_one_line_error(path, match=None):
    """Loading ``path`` fails with one ImageTypeError line naming the file (and ``match``)."""
    with pytest.raises(ImageTypeError) as info:
        it.load_types_file(path)
    message = str(info.value)
    assert path.name in message
    assert "\n" not in message and "\r" not in message
    if match is not None:
        assert match in message, message
    return message


# ---------------------------------------------------------------- class names


def test_class_names_are_the_1000_in_index_order():
    names = it.class_names()
    assert len(names) == it.N_CLASSES == 1000
    assert names[0] == "tench" and names[1] == "goldfish" and names[107] == "jellyfish"
    assert names[999] == "toilet tissue"


def test_class_index_by_name_index_and_case():
    assert it.class_index("goldfish") == 1
    assert it.class_index("GoldFish") == 1
    assert it.class_index("  great   white shark ") == 2
    assert it.class_index(985) == 985
    assert it.class_index(np.int64(7)) == 7


def test_class_index_synonyms(monkeypatch):
    names = ("tench, Tinca tinca", "goldfish, Carassius auratus", "tinca tinca plus")
    monkeypatch.setattr(it, "_class_table", lambda: (names, it._index_maps(names)))
    assert it.class_index("Carassius auratus") == 1
    assert it.class_index("tinca tinca") == 0
    assert it.class_index("goldfish, carassius auratus") == 1
    assert it.class_index("tinca tinca plus") == 2


def test_class_index_bad_name_suggests_close_match():
    with pytest.raises(ImageTypeError, match=r"'jellyfsh' is not an ImageNet class; did you mean 'jellyfish'\?"):
        it.class_index("jellyfsh")
    with pytest.raises(BadInputError):  # the CLI turns these into one error line
        it.class_index("zzzzqqqq")


@pytest.mark.parametrize("key", [-1, 1000, True, 1.0, None, [1]])
def test_class_index_rejects_non_classes(key):
    with pytest.raises(ImageTypeError):
        it.class_index(key)


def test_class_index_duplicate_imagenet_name_is_ambiguous():
    # ImageNet has two classes named "crane" (the bird 134 and the machine 517)
    with pytest.raises(ImageTypeError, match="134, 517"):
        it.class_index("crane")


# ---------------------------------------------------------------- built-ins and vectors


BUILTIN_WORDS = {
    "hairy flowers": ["daisy", "Angora"],
    "coral reef": ["coral reef", "brain coral", "anemone fish", "sea anemone"],
    "jellyfish bloom": ["jellyfish", "bubble"],
    "volcano night": ["volcano", "geyser", "torch"],
    "northern forest": ["valley", "timber wolf", "lynx", "bolete"],
    "star dome": ["planetarium", "radio telescope", "space shuttle"],
    "candy shop": ["confectionery", "ice lolly", "trifle", "toyshop"],
    "deep sea": ["chambered nautilus", "lionfish", "scuba diver"],
    "alpine lake": ["alp", "lakeside", "ibex"],
    "butterfly garden": ["monarch", "admiral", "sulphur butterfly", "lady's slipper"],
    "cathedral": ["church", "altar", "organ"],
    "desert dunes": ["sandbar", "Arabian camel", "sidewinder"],
    "fungal kingdom": ["agaric", "earthstar", "coral fungus", "stinkhorn"],
    "peacock parade": ["peacock", "macaw", "flamingo"],
    "carnival night": ["carousel", "balloon", "jack-o'-lantern", "pinwheel"],
    "snow country": ["ice bear", "Arctic fox", "alp"],
    "iron bridges": ["steel arch bridge", "suspension bridge", "viaduct"],
    "fruit market": ["pomegranate", "orange", "strawberry", "pineapple"],
}


def test_builtin_types_are_valid_and_name_the_intended_classes():
    names = it.class_names()
    builtins = {t.name: t for t in it.BUILTIN_TYPES}
    assert len(it.BUILTIN_TYPES) >= 14
    assert len({t.name.casefold() for t in it.BUILTIN_TYPES}) == len(it.BUILTIN_TYPES)
    assert set(builtins) == set(BUILTIN_WORDS)
    for name, words in BUILTIN_WORDS.items():
        image_type = builtins[name]
        assert 1 <= len(image_type.classes) <= 4
        assert all(0 <= i < it.N_CLASSES and w > 0 for i, w in image_type.classes)
        assert len({i for i, _ in image_type.classes}) == len(image_type.classes)
        assert sum(w for _, w in image_type.classes) == pytest.approx(1.0)
        assert 0 < image_type.truncation <= 1
        assert image_type.latent is None and image_type.source == "built-in"
        class_names = [names[i] for i, _ in image_type.classes]
        for word in words:
            assert any(word in class_name for class_name in class_names), (name, word, class_names)


def test_class_vector_places_weights_at_their_indices():
    image_type = it.ImageType("t", ((107, 0.7), (985, 0.25), (0, 0.05)), 0.5)
    y = image_type.class_vector()
    assert y.shape == (1000,) and y.dtype == np.float32
    assert y[107] == np.float32(0.7) and y[985] == np.float32(0.25) and y[0] == np.float32(0.05)
    assert np.count_nonzero(y) == 3


def test_latent_vector_zeros_without_latent_and_values_with():
    assert not it.ImageType("t", ((1, 1.0),), 0.5).latent_vector().any()
    z = it.ImageType("t", ((1, 1.0),), 0.5, tuple(LATENT)).latent_vector()
    assert z.shape == (128,) and z.dtype == np.float32
    np.testing.assert_allclose(z, LATENT, rtol=1e-6)


# ---------------------------------------------------------------- files


def test_toml_file_parses_and_normalises_weights(tmp_path):
    path = write(tmp_path, "mine.toml", f"""
[[type]]
name = "my jellyfish"
classes = [["jellyfish", 0.7], [985, 0.3]]
truncation = 0.5

[[type]]
name = "fish soup"
classes = [["Goldfish", 3], ["tench", 1]]
latent = {toml_list(LATENT)}
""")
    first, second = it.load_types_file(path)
    assert first == it.ImageType("my jellyfish", ((107, 0.7), (985, 0.3)), 0.5, None, str(path))
    assert second.name == "fish soup" and second.truncation == it.DEFAULT_TRUNCATION
    assert second.classes == ((1, 0.75), (0, 0.25))
    assert second.latent == tuple(LATENT)


def test_json_types_file(tmp_path):
    doc = {"types": [{"name": "reef", "classes": [["coral reef", 1], [393, 1]], "truncation": 1}]}
    path = write(tmp_path, "reef.json", json.dumps(doc))
    (reef,) = it.load_types_file(path)
    assert reef.classes == ((973, 0.5), (393, 0.5)) and reef.truncation == 1.0 and reef.source == str(path)


def test_ganbreeder_keyframe_keeps_weights_and_latent(tmp_path):
    keyframe = {"latent": LATENT, "classes": [[107, 0.3], [985, 0.05], [1, 0.0]], "truncation": 0.71}
    path = write(tmp_path, "gb.json", json.dumps(keyframe))
    (image_type,) = it.load_types_file(path)
    assert image_type.name == "gb"
    assert image_type.classes == ((107, 0.3), (985, 0.05))  # not normalised, zero dropped
    assert image_type.truncation == 0.71 and image_type.latent == tuple(LATENT)
    y = image_type.class_vector()
    assert y[107] == np.float32(0.3) and y.sum() == pytest.approx(0.35)


def test_ganbreeder_dense_class_list(tmp_path):
    dense = [0.0] * 1000
    dense[3], dense[980] = 0.2, 0.9
    path = write(tmp_path, "dense.json", json.dumps({"name": "Dense", "latent": LATENT, "classes": dense,
                                                      "truncation": 0.4}))
    (image_type,) = it.load_types_file(path)
    assert image_type.name == "Dense" and image_type.classes == ((3, 0.2), (980, 0.9))


def test_list_of_keyframes_named_by_stem_unless_named(tmp_path):
    keyframes = [{"latent": LATENT, "classes": [[i, 0.5]], "truncation": 0.5} for i in (1, 2, 3)]
    keyframes[1]["name"] = "middle"
    path = write(tmp_path, "walk.json", json.dumps(keyframes))
    assert [t.name for t in it.load_types_file(path)] == ["walk-1", "middle", "walk-3"]


def test_parse_keyframe_directly():
    image_type = it.parse_keyframe({"classes": [[5, 2.0]]}, name="k", source="x.json")
    assert image_type == it.ImageType("k", ((5, 2.0),), it.DEFAULT_TRUNCATION, None, "x.json")
    with pytest.raises(ImageTypeError, match="x.json"):
        it.parse_keyframe({"classes": [[5, 2.0]], "colour": 1}, name="k", source="x.json")


# ---------------------------------------------------------------- malformed files


def entry(**fields):
    fields.setdefault("name", "bad one")
    fields.setdefault("classes", [["jellyfish", 1]])
    return json.dumps({"types": [fields]})


MALFORMED_JSON = {
    "syntax": ("{'types': }", "not valid JSON"),
    "top level number": ("3", "expected"),
    "empty list": ("[]", "expected"),
    "empty types": ('{"types": []}', "no image types"),
    "extra top-level key": ('{"types": [{"name": "a", "classes": [[1, 1]]}], "x": 1}', "'x'"),
    "entry not object": ('{"types": [3]}', "entry 1"),
    "unknown key": (entry(colour="red"), "unknown key(s) 'colour'"),
    "missing name": ('{"types": [{"classes": [[1, 1]]}]}', "entry 1: missing name"),
    "empty name": (entry(name="  "), "name must be"),
    "long name": (entry(name="x" * 81), "at most 80"),
    "name with newline": (entry(name="a\nb"), "name must be"),
    "number name": (entry(name=5), "name must be"),
    "missing classes": (json.dumps({"types": [{"name": "bad one"}]}), "missing classes"),
    "classes not list": (entry(classes="jellyfish"), "classes must be"),
    "classes empty": (entry(classes=[]), "classes must be"),
    "too many classes": (entry(classes=[[1, 1]] * 1001), "at most 1000"),
    "not a pair": (entry(classes=[["jellyfish"]]), "pair"),
    "misspelt class": (entry(classes=[["jellyfsh", 1]]), "did you mean 'jellyfish'"),
    "index too big": (entry(classes=[[1000, 1]]), "out of range"),
    "negative index": (entry(classes=[[-1, 1]]), "out of range"),
    "bool index": (entry(classes=[[True, 1]]), "class must be"),
    "zero weight": (entry(classes=[["jellyfish", 0]]), "must be > 0"),
    "negative weight": (entry(classes=[["jellyfish", -1]]), "must be > 0"),
    "bool weight": (entry(classes=[["jellyfish", True]]), "must be a number"),
    "string weight": (entry(classes=[["jellyfish", "1"]]), "must be a number"),
    "nan weight": ('{"types": [{"name": "bad one", "classes": [[1, NaN]]}]}', "finite"),
    "huge weight": ('{"types": [{"name": "bad one", "classes": [[1, 1e999]]}]}', "finite"),
    "class twice": (entry(classes=[["jellyfish", 1], [107, 1]]), "listed twice"),
    "truncation zero": (entry(truncation=0), "truncation must be in (0, 1]"),
    "truncation big": (entry(truncation=1.5), "truncation must be in (0, 1]"),
    "truncation bool": (entry(truncation=True), "must be a number"),
    "truncation string": (entry(truncation="0.5"), "must be a number"),
    "latent short": (entry(latent=LATENT[:-1]), "exactly 128"),
    "latent not list": (entry(latent=1.0), "exactly 128"),
    "latent big value": (entry(latent=LATENT[:-1] + [11.0]), "latent[127]"),
    "latent bool": (entry(latent=LATENT[:-1] + [False]), "latent[127] must be a number"),
    "duplicate names": ('{"types": [{"name": "A", "classes": [[1, 1]]}, {"name": "a", "classes": [[2, 1]]}]}',
                        "used twice"),
    "keyframe all zero": (json.dumps({"latent": LATENT, "classes": [[1, 0]]}), "no weight > 0"),
    "keyframe negative dense": (json.dumps({"classes": [-0.1] + [0.5] * 999}), ">= 0"),
    "keyframe unknown key": (json.dumps({"latent": LATENT, "classes": [[1, 1]], "z": 0}), "'z'"),
    "keyframe not object": ('[{"classes": [[1, 1]]}, 7]', "must be an object"),
    "int too long": ('{"types": [{"name": "a", "classes": [[1, ' + "9" * 5000 + "]]}]}", "not valid JSON"),
}


@pytest.mark.parametrize("text, match", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
def test_malformed_json_is_one_line_naming_file_and_problem(tmp_path, text, match):
    message = assert_one_line_error(write(tmp_path, "broken.json", text), match)
    if "bad one" in text:
        assert "type 'bad one'" in message  # the entry is named


MALFORMED_TOML = {
    "syntax": ("[[type]\nname = 1", "not valid TOML"),
    "no types": ("title = 'x'", "unknown top-level key(s) 'title'"),
    "empty file": ("", "no image types"),
    "single table": ("[type]\nname = 'a'\nclasses = [[1, 1]]", "no image types"),
    "third entry": ("[[type]]\nname='a'\nclasses=[[1,1]]\n" * 2 + "[[type]]\nclasses=[[1,1]]", "entry 3"),
    "misspelt": ("[[type]]\nname = 'my jellyfish'\nclasses = [['jellyfsh', 0.7]]",
                 "type 'my jellyfish': class 'jellyfsh' is not an ImageNet class; did you mean 'jellyfish'? "
                 "(ganclip types --classes lists them)"),
    "inf truncation": ("[[type]]\nname='a'\nclasses=[[1,1]]\ntruncation=inf", "finite"),
    "deep arrays": ("[[type]]\nname='a'\nclasses=" + "[" * 100000 + "]" * 100000, "TOML"),
}


@pytest.mark.parametrize("text, match", MALFORMED_TOML.values(), ids=MALFORMED_TOML.keys())
def test_malformed_toml_is_one_line_naming_file_and_problem(tmp_path, text, match):
    assert_one_line_error(write(tmp_path, "broken.toml", text), match)


def test_missing_directory_unknown_extension_and_binary(tmp_path):
    assert_one_line_error(tmp_path / "absent.toml", "no such file")
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    assert_one_line_error(folder, "not a regular file")
    assert_one_line_error(write(tmp_path, "types.yaml", "a: 1"), ".toml or .json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert_one_line_error(binary, "UTF-8")


def test_two_mebibyte_file_refused(tmp_path):
    path = write(tmp_path, "huge.json", json.dumps({"types": []}) + " " * (2 << 20))
    assert_one_line_error(path, "1 MiB")


def test_json_nested_100000_deep_refused_without_crashing(tmp_path):
    path = write(tmp_path, "deep.json", "[" * 100000 + "]" * 100000)
    assert_one_line_error(path, "100000 levels deep")


def test_json_depth_ignores_brackets_inside_strings(tmp_path):
    name = "[[[[" * 20 + "]"
    path = write(tmp_path, "brackets.json", json.dumps({"types": [{"name": name[:80], "classes": [[1, 1]]}]}))
    assert it.load_types_file(path)[0].name == name[:80]
    assert it._json_depth('{"a": [[1]]}') == 3


# ---------------------------------------------------------------- palettes


def lumas(colours):
    return [it.luma(colour) for colour in colours]


def test_every_builtin_has_a_dark_to_light_palette():
    for image_type in it.BUILTIN_TYPES:
        palette = image_type.palette
        assert palette is not None and 3 <= len(palette) <= 5, image_type.name
        assert all(len(c) == 3 and all(0 <= v <= 1 for v in c) for c in palette), image_type.name
        assert np.all(np.diff(lumas(palette)) > 0), (image_type.name, [it.hex_colour(c) for c in palette])
    volcano = {t.name: t for t in it.BUILTIN_TYPES}["volcano night"]
    assert [it.hex_colour(c) for c in volcano.palette] == ["#120b0b", "#7a1010", "#ff4a1c", "#ffb347", "#fff1c8"]


def test_palette_parses_hex_short_hex_and_rgb_lists(tmp_path):
    path = write(tmp_path, "colours.toml", """
[[type]]
name = "painted"
classes = [["jellyfish", 1]]
palette = ["#120B0B", "#f80", [255, 255, 127.5]]
""")
    (painted,) = it.load_types_file(path)
    assert painted.palette == ((0x12 / 255, 0x0b / 255, 0x0b / 255), (1.0, 0x88 / 255, 0.0), (1.0, 1.0, 0.5))
    doc = {"types": [{"name": "two", "classes": [[1, 1]], "palette": [[0, 0, 0], "#fff"]}]}
    (two,) = it.load_types_file(write(tmp_path, "two.json", json.dumps(doc)))
    assert two.palette == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    (plain,) = it.load_types_file(write(tmp_path, "plain.toml", "[[type]]\nname = 'p'\nclasses = [[1, 1]]"))
    assert plain.palette is None  # colours() derives one from the name


def test_palette_array_resamples_along_the_ramp():
    image_type = it.ImageType("t", ((1, 1.0),), 0.5, palette=((0.0, 0.0, 0.0), (1.0, 0.5, 0.0)))
    ramp = image_type.palette_array(5)
    assert ramp.shape == (5, 3) and ramp.dtype == np.float32
    np.testing.assert_allclose(ramp[:, 0], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(ramp[:, 1], [0, 0.125, 0.25, 0.375, 0.5])
    three = it.ImageType("t", ((1, 1.0),), 0.5, palette=((0.0, 0.0, 0.0), (0.2, 0.2, 0.2), (1.0, 1.0, 1.0)))
    np.testing.assert_allclose(three.palette_array(3), three.palette, rtol=1e-6)  # k = n: the colours as given
    np.testing.assert_allclose(three.palette_array(5)[:, 0], [0, 0.1, 0.2, 0.6, 1], rtol=1e-6)
    np.testing.assert_allclose(three.palette_array(2), [three.palette[0], three.palette[2]])
    np.testing.assert_allclose(three.palette_array(1), [three.palette[1]])
    for builtin in it.BUILTIN_TYPES:
        assert builtin.palette_array(8).shape == (8, 3)
    with pytest.raises(ValueError):
        image_type.palette_array(0)


def test_derived_palette_is_deterministic_and_dark_to_light():
    plain = it.ImageType("my goldfish", ((1, 1.0),), 0.5)
    # a known answer: crc32 of the name, not hash(), which changes from one process to the next
    assert [it.hex_colour(c) for c in plain.colours()] == ["#05240d", "#167e25", "#30cf34", "#95dd8d", "#e5f4e1"]
    ramp = plain.palette_array(7)
    assert ramp.shape == (7, 3) and ramp.dtype == np.float32
    np.testing.assert_array_equal(ramp, it.ImageType("  My  GOLDFISH", ((2, 1.0),), 0.9).palette_array(7))
    derived = {name: it.ImageType(name, ((1, 1.0),), 0.5).colours() for name in [f"type {i}" for i in range(300)]}
    assert len(set(derived.values())) == len(derived)  # different names, different looks
    for name, colours in derived.items():
        assert len(colours) == it.DERIVED_PALETTE and all(0 <= v <= 1 for c in colours for v in c)
        values = lumas(colours)
        assert np.all(np.diff(values) > 0) and values[0] < 0.2 and values[-1] > 0.7, (name, values)


def palette_entry(palette, *, kind=".toml"):
    if kind == ".json":
        return entry(palette=palette)
    return f"[[type]]\nname = 'bad one'\nclasses = [['jellyfish', 1]]\npalette = {palette}\n"


BAD_PALETTES = {
    "five hex digits": ('["#000000", "#12345"]', 'palette colour 2 must be "#rrggbb", "#rgb" or [r, g, b]'),
    "colour name": ('["red-ish", "#fff"]', "palette colour 1 must be"),
    "no hash": ('["000000", "#fff"]', "palette colour 1 must be"),
    "rgb too big": ('[[300, 0, 0], "#fff"]', "palette colour 1 [300, 0, 0] has a value outside 0-255"),
    "rgb negative": ('["#000", [0, -1, 0]]', "palette colour 2 [0, -1, 0] has a value outside 0-255"),
    "rgb two values": ('["#000", [0, 0]]', "palette colour 2 must be"),
    "rgb string value": ('["#000", [0, "1", 0]]', "palette colour 2[1] must be a number"),
    "rgb bool": ('["#000", [0, true, 0]]', "palette colour 2[1] must be a number"),
    "number colour": ('[3, "#fff"]', "palette colour 1 must be"),
    "one colour": ('["#000"]', "palette has 1 colour; give 2-8, dark to light"),
    "no colours": ("[]", "palette has 0 colours; give 2-8"),
    "nine colours": ('["#000", "#111", "#222", "#333", "#444", "#555", "#666", "#777", "#888"]',
                     "palette has 9 colours; give 2-8"),
    "not a list": ('"#120b0b"', "palette must be a list of 2-8 colours"),
    "a number": ("7", "palette must be a list of 2-8 colours"),
    "a table": ("{ a = 1 }", "palette must be a list"),
}


@pytest.mark.parametrize("palette, match", BAD_PALETTES.values(), ids=BAD_PALETTES.keys())
def test_bad_palette_is_one_line_naming_file_type_and_palette(tmp_path, palette, match):
    message = assert_one_line_error(write(tmp_path, "colours.toml", palette_entry(palette)), match)
    assert "type 'bad one'" in message and "palette" in message


def test_bad_palette_in_json(tmp_path):
    path = write(tmp_path, "colours.json", palette_entry(["#000", [0, 0, 256]], kind=".json"))
    message = assert_one_line_error(path, "palette colour 2 [0, 0, 256] has a value outside 0-255")
    assert "type 'bad one'" in message
    assert_one_line_error(write(tmp_path, "nan.json", '{"types": [{"name": "n", "classes": [[1, 1]], '
                                                      '"palette": [[NaN, 0, 0], "#fff"]}]}'), "finite")


def test_render_with_a_bad_palette_is_one_error_line(tmp_path, song, capsys):
    from ganclip.cli import main

    types = write(tmp_path, "types.toml", palette_entry('["#120b0b", "#12345"]'))
    out = tmp_path / "out.mp4"
    code = main(["render", str(song), "-o", str(out), "--types-file", str(types)])
    _, err = capsys.readouterr()
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "types.toml" in lines[0] and "'bad one'" in lines[0] and "palette colour 2" in lines[0], lines[0]
    assert not out.exists()


def test_types_command_shows_each_palette_in_hex(tmp_path, capsys):
    from ganclip.cli import main

    types = write(tmp_path, "mine.toml", "[[type]]\nname = 'painted'\nclasses = [[1, 1]]\n"
                                         "palette = ['#000', [255, 136, 0]]\n"
                                         "[[type]]\nname = 'my goldfish'\nclasses = [[1, 1]]\n")
    assert main(["types", "--types-file", str(types)]) == 0
    lines = {line.split("  ")[0].strip(): line for line in capsys.readouterr()[0].splitlines()}
    assert "palette #120b0b #7a1010 #ff4a1c #ffb347 #fff1c8" in lines["volcano night"]
    assert "palette #000000 #ff8800  (" in lines["painted"]
    assert "palette #05240d #167e25 #30cf34 #95dd8d #e5f4e1 (from name)" in lines["my goldfish"]


# ---------------------------------------------------------------- discovery and choice


def test_available_types_reads_imagetypes_folder_and_overrides_by_name(tmp_path):
    folder = tmp_path / "imagetypes"
    folder.mkdir()
    write(folder, "b.toml", "[[type]]\nname = 'Coral Reef'\nclasses = [['goldfish', 1]]\ntruncation = 0.3")
    write(folder, "a.json", json.dumps({"types": [{"name": "zz first", "classes": [[5, 1]]},
                                                  {"name": "shared", "classes": [[6, 1]]}]}))
    write(folder, "c.json", json.dumps({"types": [{"name": "SHARED", "classes": [[7, 1]]}]}))
    write(folder, "notes.txt", "ignored")
    extra = write(tmp_path, "extra.toml", "[[type]]\nname = 'zz first'\nclasses = [[8, 1]]")
    found = it.available_types(search_dir=tmp_path, types_file=extra)
    names = [t.name for t in found]
    builtin_names = [t.name for t in it.BUILTIN_TYPES]
    assert names[: len(builtin_names)] == ["Coral Reef" if n == "coral reef" else n for n in builtin_names]
    assert names[len(builtin_names):] == ["zz first", "SHARED"]  # a.json before c.json; replaced in place
    by_name = {t.name: t for t in found}
    assert by_name["Coral Reef"].classes == ((1, 1.0),) and by_name["Coral Reef"].source.endswith("b.toml")
    assert by_name["zz first"].classes == ((8, 1.0),) and by_name["SHARED"].classes == ((7, 1.0),)


def test_available_types_without_folder_is_builtins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert it.available_types() == list(it.BUILTIN_TYPES)


def test_available_types_reports_bad_user_file(tmp_path):
    folder = tmp_path / "imagetypes"
    folder.mkdir()
    write(folder, "oops.toml", "[[type]]\nname = 'x'")
    with pytest.raises(ImageTypeError, match="oops.toml"):
        it.available_types(search_dir=tmp_path)


def test_choose_types_is_deterministic_per_seed_and_distinct():
    available = list(it.BUILTIN_TYPES)
    first = it.choose_types(available, n=5, seed=1)
    assert first == it.choose_types(available, n=5, seed=1)
    assert len({t.name for t in first}) == 5
    assert first != it.choose_types(available, n=5, seed=2)
    assert sorted(t.name for t in it.choose_types(available, n=len(available), seed=3)) == \
        sorted(t.name for t in available)


def test_choose_types_by_name_in_order_case_insensitive():
    chosen = it.choose_types(it.BUILTIN_TYPES, names=["Deep Sea", "coral reef "], n=1)
    assert [t.name for t in chosen] == ["deep sea", "coral reef"]
    assert it.choose_types(it.BUILTIN_TYPES) == list(it.BUILTIN_TYPES)


@pytest.mark.parametrize("kwargs, match", [
    ({"names": ["deep sea", "nope"]}, "unknown image type 'nope'; available: hairy flowers, "),
    ({"names": ["deep sea", "DEEP SEA"]}, "listed twice"),
    ({"names": []}, "no image type names"),
    ({"n": 0}, "--types must be between 1 and 18 (the number of image types available); got 0. "
               "Add more in a --types-file or imagetypes/*.toml"),
    ({"n": 19}, "got 19"),
    ({"n": True}, "got True"),
])
def test_choose_types_errors(kwargs, match):
    with pytest.raises(ImageTypeError) as info:
        it.choose_types(it.BUILTIN_TYPES, **kwargs)
    assert match in str(info.value)


@pytest.mark.parametrize("value", ["6", 13, -2, 2.5, True])
def test_a_bad_symmetry_is_one_line_naming_the_type(value, tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(entry(name="mine", symmetry=value))
    with pytest.raises(ImageTypeError, match=r"mine.json: type 'mine': symmetry must be 0"):
        it.load_types_file(path)


def test_symmetry_is_read_and_some_built_ins_have_one(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[type]]\nname = "flake"\nclasses = [[1, 1]]\nsymmetry = 6\n')
    assert it.load_types_file(path)[0].symmetry == 6
    assert {t.name: t.symmetry for t in it.BUILTIN_TYPES}["snow country"] == 6
    assert sum(t.symmetry > 0 for t in it.BUILTIN_TYPES) >= 5
