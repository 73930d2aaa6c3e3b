"""The command line in zh-CN: errors, help texts and `kubelab cluster` output are Chinese when the
learner reads Chinese (KUBELAB_LANG, or the workspace's choice), one line each as in English."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kubelab import workspace
from kubelab.cluster.findings import width
from kubelab.errors import KubelabError

KUBELAB = [sys.executable, "-m", "kubelab"]


def run(
    *args: str, lang: str | None = "zh-CN", cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a learner would, in `lang` (None: no language asked for, English locale)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
    env.pop("KUBELAB_LANG", None)
    env["LANG"] = "C.UTF-8"
    if lang:
        env["KUBELAB_LANG"] = lang
    env.update(extra)
    return subprocess.run(
        [*KUBELAB, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The command failed with code 2 and one line, no traceback: return that line."""
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def test_status_of_a_cluster_that_is_not_up() -> None:
    line = one_line(run("cluster", "--name", "never-started", "status"))
    assert line == "kubelab：错误：集群 'never-started' 没有运行；用 `kubelab cluster up` 启动一个"


def test_a_port_that_is_no_tcp_port() -> None:
    line = one_line(run("start", "--port", "70000"))
    assert line.startswith("kubelab start：错误："), line
    assert line.endswith("不是有效的 TCP 端口：70000（参见 --help）"), line


def test_a_node_count_below_one() -> None:
    line = one_line(run("cluster", "up", "--nodes", "0"))
    assert line.endswith("至少应为 1，实际为 0（参见 --help）"), line


def test_argparse_own_words() -> None:
    # argparse's own messages come through kubelab's catalogue too: no English half-line.
    line = one_line(run("cluster", "up", "--backend", "minikube"))
    assert line.startswith("kubelab cluster up：错误：参数 --backend：无效的选择：'minikube'"), line
    line = one_line(run("check"))
    assert line == "kubelab check：错误：缺少以下必需的参数：lab（参见 --help）", line
    proc = run("cluster", "--help")
    assert proc.returncode == 0, proc
    assert proc.stdout.startswith("用法：kubelab cluster "), proc.stdout
    assert "显示此帮助信息并退出" in proc.stdout, proc.stdout


def test_a_lab_that_does_not_exist() -> None:
    line = one_line(run("check", "99"))
    assert line.startswith("kubelab：错误：未知的实验 '99'；现有的实验是："), line
    assert "02-deployment" in line, line
    assert line.endswith("（见 `kubelab labs`）"), line


def test_english_is_unchanged() -> None:
    line = one_line(run("start", "--port", "70000", lang="en"))
    assert line.endswith(": not a TCP port: 70000 (see --help)"), line
    line = one_line(run("cluster", "--name", "never-started", "status", lang=None))
    assert (
        line
        == "kubelab: error: no cluster 'never-started' is up; start one with `kubelab cluster up`"
    )


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("zh-CN", "启动集群（已在运行的集群会被复用）"),
        ("en", "start the cluster (reuses a running one)"),
    ],
)
def test_help_in_the_workspace_language(tmp_path: Path, lang: str, said: str) -> None:
    # No KUBELAB_LANG and an English locale: the workspace around the current folder decides, and
    # it must be read before argparse builds its help texts.
    (tmp_path / workspace.MARKER).write_text("")
    (tmp_path / workspace.SETTINGS).write_text(json.dumps({"lang": lang}))
    inside = tmp_path / "labs"
    inside.mkdir()
    proc = run("cluster", "--help", lang=None, cwd=inside)
    assert proc.returncode == 0, proc
    assert said in proc.stdout, proc.stdout


def test_status_table_of_a_cluster_that_does_not_answer(tmp_path: Path) -> None:
    # A cluster registered with `cluster use` whose API server is gone: the table says so, its
    # labels in Chinese and its values in one column (a Chinese character is two columns wide).
    kubeconfig = tmp_path / "dead.kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "dead", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "dead", "user": {"token": "x"}}],
                "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}],
                "current-context": "dead",
            }
        )
    )
    cache = tmp_path / "cache"
    (cache / "clusters").mkdir(parents=True)
    record = {"backend": "existing", "kubeconfig": str(kubeconfig), "context": "dead"}
    (cache / "clusters" / "dead.json").write_text(json.dumps(record))
    proc = run("cluster", "--name", "dead", "status", KUBELAB_CACHE=str(cache))
    assert proc.returncode == 1, proc
    rows = proc.stdout.splitlines()
    labels = [row.split()[0] for row in rows]
    assert labels == ["集群", "状态", "kubeconfig", "来源"], rows
    assert rows[0].endswith("  dead (existing)"), rows
    assert "未运行：没有响应：" in rows[1], rows
    starts = {
        width(row[: row.index(value)])
        for row, value in zip(rows, ["dead", "未运行", "/", "/"], strict=True)
    }
    assert len(starts) == 1, rows


def test_check_table_in_chinese_keeps_its_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    # `kubelab cluster check`'s table: headings and statuses translated, the statuses compared
    # as they are, and every column starting at the same terminal column in every row.
    from kubelab.cluster.findings import MISSING, OK, Finding, table

    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    rows = [
        Finding("Kubernetes 版本", "v1.36.0", OK),
        Finding("默认 StorageClass", "无", MISSING, "标记一个"),
    ]
    assert [f.failing for f in rows] == [False, True]
    lines = table(rows).splitlines()
    assert lines[0].split() == ["要求", "现状", "状态", "怎么做"], lines
    assert lines[1].split()[-1] == "正常" and lines[2].split()[-2:] == ["缺失", "标记一个"], lines
    for column, cells in ((1, ["现状", "v1.36.0", "无"]), (2, ["状态", "正常", "缺失"])):
        starts = {width(line[: line.index(cell)]) for line, cell in zip(lines, cells, strict=True)}
        assert len(starts) == 1, (column, lines)
    monkeypatch.setenv("KUBELAB_LANG", "en")
    assert table(rows).splitlines()[0].split() == [
        "REQUIREMENT",
        "FOUND",
        "STATUS",
        "WHAT",
        "TO",
        "DO",
    ]


def _closed_port() -> int:
    with socket.socket() as s:  # a port nothing listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


def test_a_dead_cluster_is_one_chinese_line(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{_closed_port()}"
    kubeconfig = _kubeconfig(tmp_path / "dead.yaml", server)
    data = str(tmp_path / "data")
    line = one_line(run("check", "02", KUBECONFIG=str(kubeconfig), KUBELAB_DATA=data))
    assert line == (
        f"kubelab：错误：{server} 没有集群响应：请用 `kubelab cluster up` 启动集群"
        "（或检查 KUBECONFIG）"
    ), line
    english = one_line(run("check", "02", lang="en", KUBECONFIG=str(kubeconfig), KUBELAB_DATA=data))
    assert english == (
        f"kubelab: error: no cluster answers at {server}: start it with `kubelab cluster up`"
        " (or check KUBECONFIG)"
    ), english


def test_a_wrong_kubeconfig_is_one_chinese_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    missing = tmp_path / "nowhere.yaml"
    line = one_line(run("check", "02", KUBECONFIG=str(missing), KUBELAB_DATA=data))
    assert line == (
        f"kubelab：错误：KUBECONFIG 指向 {missing}，它不存在"
        "（`kubelab cluster env` 会输出课程集群的 kubeconfig）"
    ), line
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    line = one_line(run("check", "02", KUBECONFIG=str(empty), KUBELAB_DATA=data))
    assert line == f"kubelab：错误：KUBECONFIG 指向 {empty}，它是空的", line


def test_grade_and_workshop_help_in_chinese() -> None:
    proc = run("grade", "--help")
    assert proc.returncode == 0, proc
    assert proc.stdout.startswith("用法：kubelab grade "), proc.stdout
    for said in ("生成实验的学生版本（不含答案）", "在集群上为某个实验的每份提交评分"):
        assert said in proc.stdout, proc.stdout
    proc = run("grade", "autograde", "--help")
    assert "评分器等待集群稳定的秒数（默认 60）" in proc.stdout, proc.stdout
    proc = run("workshop", "--help")
    assert "实时看板：参与者 × 实验，得分" in proc.stdout, proc.stdout
    assert "live board" not in run("workshop", "--help").stdout
    english = run("grade", "--help", lang="en").stdout
    assert "make the student version of labs (no solutions)" in english, english


def test_workshop_and_grade_refusals_in_chinese(tmp_path: Path) -> None:
    # Refused before any cluster is asked: the arguments are wrong.
    line = one_line(run("workshop", "up", "--participants", "0"))
    assert line == "kubelab：错误：--participants 至少为 1，收到的是 0", line
    line = one_line(run("workshop", "status", "--interval", "0.5"))
    assert line == "kubelab：错误：--interval 至少为 1 秒，收到的是 0.5", line
    line = one_line(run("grade", "autograde", "02", "--student", "x y", "--course", str(tmp_path)))
    assert line == (
        "kubelab：错误：学生 ID 'x y' 无效：请使用字母、数字和 . _ @ + -（最多 63 个字符）"
    ), line


def test_api_answers_and_a_missing_kubectl_in_chinese(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubelab import api, apply, tools

    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    assert api.describe(403, "Forbidden", "pods is forbidden") == "不允许（403）：pods is forbidden"
    assert api.describe(409, "Conflict", "x") == "冲突（409）：x；请重新读取该对象后再试"
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    monkeypatch.setattr(tools, "find", lambda name: None)
    with pytest.raises(KubelabError) as err:
        apply.apply(manifest, namespace="lab-02")
    assert str(err.value).startswith("需要 `kubectl`（用于应用清单），但没有找到它："), err.value
    monkeypatch.setenv("KUBELAB_LANG", "en")
    assert api.describe(403, "Forbidden", "x") == "not allowed (403): x"
    with pytest.raises(KubelabError) as err:
        apply.apply(manifest, namespace="lab-02")
    assert str(err.value).startswith("`kubectl` is needed to apply manifests but was not found:")


def test_workshop_board_in_chinese_keeps_its_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timezone

    from kubelab import labs
    from kubelab.workshop import board

    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    lab = labs.find("02")
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
    rows = [
        board.Row(
            "alice", {lab.id: board.Cell(lab.max_score, lab.max_score, "2026-03-01T11:59:40Z")}
        ),
        board.Row("bob", {lab.id: board.Cell(lab.max_score)}),
    ]
    lines = board.render(board.Board([lab], rows), now).splitlines()
    assert lines[0].split() == ["参与者", "02", "总分", "上次检查"], lines
    assert lines[1].endswith("20 秒前") and lines[2].endswith("未检查"), lines
    for cell in ("02", "总分", "上次检查"):  # the header's cells start where the rows' cells do
        column = width(lines[0][: lines[0].index(cell)])
        assert all(line[column - 2 : column] == "  " != line[column] for line in lines[1:3]), (
            cell,
            lines,
        )
    assert lines[-1].startswith("2 个参与者，其中 1 个得满分；· 表示尚未检查"), lines
    monkeypatch.setenv("KUBELAB_LANG", "en")
    assert board.render(board.Board([lab], rows), now).splitlines()[0].split() == [
        "participant",
        "02",
        "total",
        "last",
        "check",
    ]


def test_rollout_view_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    # The notebook's rollout table and its terminal line: headings and states in Chinese.
    from kubelab import views

    def rs(name: str, revision: int, image: str, n: int) -> dict[str, object]:
        return {
            "metadata": {
                "name": name,
                "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            },
            "spec": {"replicas": n, "template": {"spec": {"containers": [{"image": image}]}}},
            "status": {"replicas": n, "readyReplicas": n, "availableReplicas": n},
        }

    dep = {
        "metadata": {
            "name": "web",
            "generation": 2,
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 2},
    }
    states = [
        views.replica_set_state(rs("web-a", 1, "demo:v1", 2)),
        views.replica_set_state(rs("web-b", 2, "demo:v2", 2)),
    ]
    s = views.sample(1.5, dep, states)
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    line = views.render_line(s)
    assert "新修订版本 2（v2）：期望 2 Pod 2 就绪 2 可用 2" in line, line
    assert "旧修订版本 1（v1）" in line, line
    table = views.render_html("web", s)
    assert "<th>修订版本</th>" in table and "<th>镜像</th>" in table, table
    assert "Deployment web：1.5 秒时滚动更新中" in table, table
    monkeypatch.setenv("KUBELAB_LANG", "en")
    assert "new rev 2 (v2): desired 2 pods 2 ready 2 available 2" in views.render_line(s)


def test_autoscaling_summary_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubelab.plots import ScaleSample, render_line, summary

    samples = [ScaleSample(0, None, 60, 3, 3, 3), ScaleSample(10, 300, 60, 6, 6, 6)]
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    assert summary(samples) == (
        "10 秒内 2 个样本；CPU 峰值 300%（第 10 秒）；副本数 3 -> 6（第 10 秒）-> 6"
    )
    assert render_line(samples[1]) == " 10.0s  CPU  300% / 60%  期望  6  就绪  6/6 "
    monkeypatch.setenv("KUBELAB_LANG", "en")
    assert summary(samples) == (
        "2 samples over 10 s; peak CPU 300% at 10 s; replicas 3 -> 6 (at 10 s) -> 6"
    )


def test_feedback_page_in_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    # A student's feedback page, written where the instructor grades in zh-CN.
    from kubelab import labs
    from kubelab.instructor import gradebook

    lab = labs.find("02")
    data = {
        "run": {"status": "timeout", "message": "x"},
        "reached": [lab.tasks[0].id],
        "deleted_grade_cells": ["svc"],
    }
    monkeypatch.setenv("KUBELAB_LANG", "zh-CN")
    row = gradebook.row_from_result(lab, "alice", data)
    assert row.checks[-1].message == "未运行：笔记本在此单元格之前就停止了（timeout）"
    page = gradebook.feedback_html(row)
    assert '<html lang="zh-CN">' in page
    assert "分数来自你的笔记本运行之后集群的状态。" in page
    assert "评分提前结束：<b>timeout</b> x。未执行到其单元格的任务计 0 分。" in page
    assert "笔记本的评分单元格 `svc` 被删除了：计 0 分" in page
    monkeypatch.setenv("KUBELAB_LANG", "en")
    page = gradebook.feedback_html(gradebook.row_from_result(lab, "alice", data))
    assert '<html lang="en">' in page and "Grading ended early: <b>timeout</b> x." in page
