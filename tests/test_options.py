"""Options are checked once, before anything is written, with the same line everywhere."""

import numpy as np
import pytest

import ganclip
from ganclip.cli import main
from ganclip.errors import BadInputError
from ganclip.options import AnalysisOptions, GeneratorOptions, split


def run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--seed", "-5"], "--seed must be a whole number between 0 and 4294967295; got -5"),
    (["--device", "cuda"], "--device 'cuda': torch sees no CUDA GPU here; use cpu"),
    (["--device", "tpu9"], "unknown --device 'tpu9'"),
    (["--fps", "500"], "--fps must be a number between 1 and 120; got 500"),
    (["--precision", "fp16"], "--precision fp16 needs a CUDA device"),
])
def test_a_bad_option_is_one_line_and_writes_nothing(song, tmp_path, capsys, flags, message):
    out = tmp_path / "o.mp4"
    code, err = run(["render", str(song), "-o", str(out), *flags], capsys)
    assert code == 2 and err.startswith("error: ") and message in err and len(
        err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]  # no .parts folder
    with pytest.raises(BadInputError) as library:  # the same line from the library
        ganclip.render(song, output=out, quiet=True, **{
            flags[0][2:].replace("-", "_"): type(getattr(GeneratorOptions(), flags[0][2:], ""))(
                flags[1]) if flags[0][2:] in ("device", "precision") else float(flags[1])})
    assert message in str(library.value)


def test_a_plan_in_that_is_not_a_plan_never_advises_a_pickle(song, tmp_path, capsys):
    import pickle

    for name, data in (("text.npz", b"hello"), ("pickle.npz", pickle.dumps({"z": 1}))):
        (tmp_path / name).write_bytes(data)
        code, err = run(["render", str(song), "-o", str(tmp_path / "o.mp4"),
                         "--plan-in", str(tmp_path / name)], capsys)
        assert code == 2 and "is not a ganclip plan" in err and "--plan-out" in err
        assert "allow_pickle" not in err and len(err.strip().splitlines()) == 1
    np.save(tmp_path / "array.npy", np.arange(3))
    code, err = run(["render", str(song), "-o", str(tmp_path / "o.mp4"),
                     "--plan-in", str(tmp_path / "array.npy")], capsys)
    assert code == 2 and "is not a ganclip plan" in err


def test_keyword_options_build_the_dataclasses():
    analysis, generator = split(dict(fps=29.97, size=512, pulse=0.2, type_names="a, b",
                                     truncation_range="0.5,1"))
    assert analysis.fps == pytest.approx(30000 / 1001) and analysis.transitions == 10
    assert analysis.reactive.pulse == 0.2 and analysis.reactive.truncation_range == (0.5, 1.0)
    assert analysis.type_names == ("a", "b") and generator.size == (512, 512)
    with pytest.raises(TypeError, match="unexpected option fpss"):
        split(dict(fpss=3))
    with pytest.raises(BadInputError, match="--classes-from chroma mixes 12"):
        AnalysisOptions(types=3, reactive=ganclip.ReactiveSettings(classes_from="chroma"))


def test_the_cli_flags_come_from_the_option_fields():
    from ganclip.cli import build_parser
    from ganclip.options import fields_of

    render = build_parser()._subparsers._group_actions[0].choices["render"]
    flags = {a.dest: a for a in render._actions}
    for cls in (AnalysisOptions, GeneratorOptions):
        for f in fields_of(cls):
            assert f.name in flags and f.metadata["help"] in flags[f.name].help, f.name
    assert flags["mode"].choices == ("reactive", "classic")
