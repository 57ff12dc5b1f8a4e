"""A small Hydra app that is not kdgat, to show the kdgat_chain launcher is generic.

Each stage writes `<out>/<tag>-<stage>.done` holding the stages it found
done before it (that file is also the stage's completion marker for the
launcher); `fail=<stage>` makes that stage raise (only in the chain of
`fail_tag`, when set).
"""

from pathlib import Path

import hydra

from hydra_plugins.kdgat_chain_launcher import exit_on_error


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    if cfg.stage == cfg.fail and cfg.fail_tag in (None, cfg.tag):
        raise RuntimeError(f"stage {cfg.stage} was asked to fail")
    out = Path(cfg.out)
    before = sorted(p.name for p in out.glob(f"{cfg.tag}-*.done"))
    (out / f"{cfg.tag}-{cfg.stage}.done").write_text("\n".join(before) + "\n")


if __name__ == "__main__":
    exit_on_error()  # a refused launch: one line and exit status 1
    main()
