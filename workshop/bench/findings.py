"""What the run found, in sentences, in both languages: the pages quote figures only through these (and
the tables), so no number in their prose can be older than the run beside it."""

from __future__ import annotations

from . import stats
from .report import fmt_ms, fmt_num, fmt_ratio, fmt_share
from .report_peers import NAMES, ordinal, ranking


def facts(results: dict) -> dict:
    """The figures the sentences use, formatted; a sentence whose figures are missing is left out."""
    f: dict = {}
    endpoint = results.get("endpoint") or {}
    at = {(r["rate"], r["step"]): r for r in endpoint.get("summary", [])}
    row = next((r for r in endpoint.get("ratios", []) if r["rate"] == stats.TARGET_RATE), None)
    if row and at.get((stats.TARGET_RATE, 1)) and at.get((stats.TARGET_RATE, 4)):
        f.update(rate=stats.TARGET_RATE, step1=fmt_ms(at[(stats.TARGET_RATE, 1)]["p50_ms"]),
                 step4=fmt_ms(at[(stats.TARGET_RATE, 4)]["p50_ms"]), ratio=fmt_ratio(row["step1_over_step4_p50"]),
                 cost=fmt_ratio(row["step4_over_step3_cpu"]), p50_cost=fmt_ratio(row["step4_over_step3_p50"]),
                 capacity=fmt_ratio(stats.capacity_ratio(endpoint.get("capacity", []))))  # fmt: skip
    spreads = [r["p50_spread"] for r in endpoint.get("summary", []) if r["p50_spread"]]
    if spreads:
        f["spread"] = fmt_num(max(spreads), 2)
    delivery = results.get("delivery") or {}
    pools = {(r["pool"], r["concurrency"], r["options"]): r for r in delivery.get("pools", [])}
    ceiling = {c["concurrency"]: c for c in delivery.get("ceilings", [])}
    if 50 in ceiling:
        f["ceiling50"] = fmt_num(ceiling[50]["per_s"], 1)
    best = max((r for r in delivery.get("pools", []) if r["concurrency"] == 50 and r["sms_per_s"]),
               key=lambda r: r["sms_per_s"], default=None)  # fmt: skip
    if best:
        f.update(
            best_pool=best["pool"],
            best=fmt_num(best["sms_per_s"], 1),
            best_share=fmt_share(best["of_ceiling"]),
        )
    for key, label in (
        (("prefork", 2, ""), "prefork2"),
        (("threads", 50, ""), "threads50"),
        (("gevent", 20, ""), "gevent20"),
        (("gevent", 20, "--prefetch-multiplier=2"), "gevent20p2"),
        (("gevent", 20, "--disable-prefetch"), "gevent20dp"),
        (("threads", 20, ""), "threads20"),
    ):
        if key in pools:
            f[label] = fmt_num(pools[key]["sms_per_s"], 1)
    rel = results.get("reliability") or []
    if len(rel) == 3 and all(r["cpu_ms_per_sms"] and r["sms_per_s"] for r in rel):
        f.update(rel_cpu=fmt_ratio(stats.ratio(rel[2]["cpu_ms_per_sms"], rel[0]["cpu_ms_per_sms"])),
                 rel_settings_cpu=fmt_ratio(stats.ratio(rel[1]["cpu_ms_per_sms"], rel[0]["cpu_ms_per_sms"])),
                 rel_settings_time=fmt_ratio(stats.ratio(rel[0]["sms_per_s"], rel[1]["sms_per_s"])),
                 rel_time=fmt_ratio(stats.ratio(rel[0]["sms_per_s"], rel[2]["sms_per_s"])),
                 rel_dups=str(sum(r["duplicates"] for r in rel)), rel_base=fmt_num(rel[0]["sms_per_s"], 1),
                 rel_cpu_ms=fmt_ms(rel[2]["cpu_ms_per_sms"]), rel_base_cpu_ms=fmt_ms(rel[0]["cpu_ms_per_sms"]))  # fmt: skip
        if 50 in ceiling:
            f["rel_base_share"] = fmt_share(stats.ratio(rel[0]["sms_per_s"], ceiling[50]["per_s"]))
    t50, t100 = pools.get(("threads", 50, "")), pools.get(("threads", 100, ""))
    if (
        t50
        and t100
        and t50["sms_per_s"]
        and t100["sms_per_s"]
        and t100["sms_per_s"] <= 1.05 * t50["sms_per_s"]
    ):
        f.update(cpu_bound_100=fmt_num(t100["sms_per_s"], 1), cpu_bound_50=fmt_num(t50["sms_per_s"], 1),
                 cpu_bound_ms=fmt_ms(t50["cpu_ms_per_sms"]))  # fmt: skip
    f.update(peer_facts(results.get("peers") or {}))
    return f


def peer_facts(peers: dict) -> dict:
    """Celery's place among the peers on Redis, per job, and the Optimizing guide's row on RabbitMQ."""
    f = {}
    for job in ("noop", "sms"):
        rows = ranking(peers, "redis", job)
        if rows:
            rank = 1 + [r["peer"].startswith("celery") for r in rows].index(True)
            f[f"{job}_rank"], f[f"{job}_nth"], f[f"{job}_of"] = ordinal(rank), rank, len(rows)
            f[f"{job}_list"] = ", ".join(f"{NAMES[r['peer']]} {fmt_num(r['drain_per_s'])}/s" for r in rows)
    tuned = next(
        (r for r in peers.get("rows", []) if r["peer"] == "celery-tuned" and r.get("drain_per_s")), None
    )
    if tuned:
        f.update(
            tuned_per_min=fmt_num(tuned["drain_per_s"] * 60),
            tuned_share=fmt_share(tuned["drain_per_s"] * 60 / 1e6),
        )
    return f


EN = {
    "ratio": "At {rate} requests a second with a 2 s provider, step 1 answers in {step1} (p50) and step 4 in "
    "{step4}: step 4 is {ratio} faster.",
    "spread": "The rounds agreed within {spread}× (max ÷ min of every endpoint's p50).",
    "cost": "Step 4's checks cost {cost} step 3's CPU per request, gunicorn's and Redis's ({p50_cost} its p50); at saturation "
    "step 3 serves {capacity} as many requests a second.",
    "best": "The gateway itself takes {ceiling50} SMS/s from 50 senders; the best pool at concurrency 50, "
    "{best_pool}, delivers {best} SMS/s, {best_share} of that.",
    "threads50": "Step 4's Procfile runs `--pool=threads --concurrency=50`: {threads50} SMS/s, where the "
    "default prefork pool with 2 processes delivers {prefork2}.",
    "gevent20": "gevent with 20 greenlets and step 4's settings delivers {gevent20} SMS/s (threads: "
    "{threads20}); with `--prefetch-multiplier=2` {gevent20p2}, with `--disable-prefetch` {gevent20dp}.",
    "rel_cpu": "Against Celery's defaults on the same pool, step 4's two settings (late acks, prefetch 1) cost "
    "{rel_settings_cpu} the worker CPU per SMS and {rel_settings_time} the delivery time; step 4's whole task "
    "(the reference looked up, the claim, masked logs) {rel_cpu} and {rel_time}; {rel_dups} SMS were sent "
    "twice in all three.",
    "rel_base": "The plain Celery task with Celery's defaults delivers {rel_base} SMS/s ({rel_base_share} of the "
    "gateway's ceiling at 50) for {rel_base_cpu_ms} of worker CPU per SMS; step 4's task spends {rel_cpu_ms}.",
    "cpu_bound": "100 threads deliver {cpu_bound_100} SMS/s, no more than 50 do ({cpu_bound_50}): the worker is "
    "limited by its own CPU ({cpu_bound_ms} per SMS, in one process), not by waiting for the provider.",
    "noop_rank": "Among the task queues on Redis, Celery comes {noop_rank} of {noop_of} at draining no-op tasks "
    "({noop_list}); why, from each project's design, is under the peers table.",
    "sms_rank": "On the SMS job, where each task waits for the provider, Celery comes {sms_rank} of {sms_of} "
    "({sms_list}).",
    "tuned": "With its Optimizing guide's settings on RabbitMQ, one Celery process drains {tuned_per_min} no-op "
    "tasks a minute: {tuned_share} of the million its introduction speaks of.",
}
ZH = {
    "ratio": "每秒 {rate} 个请求、短信服务商 2 秒才返回时，步骤 1 的中位响应时间是 {step1}，步骤 4 是 {step4}："
    "步骤 4 快 {ratio}。",
    "spread": "几轮测量之间相差不超过 {spread} 倍（每个接口 p50 的最大值 ÷ 最小值）。",
    "cost": "加上各项检查后，步骤 4 每个请求耗费的 CPU（gunicorn 加 Redis）是步骤 3 的 {cost}（p50 是步骤 3 的 "
    "{p50_cost}）；跑满时，步骤 3 每秒能处理的请求数是步骤 4 的 {capacity}。",
    "best": "网关本身在 50 个并发发送方下每秒能收 {ceiling50} 条；并发 50 时最好的进程池 {best_pool} 每秒发出 "
    "{best} 条，是网关上限的 {best_share}。",
    "threads50": "步骤 4 的 Procfile 用 `--pool=threads --concurrency=50`：每秒 {threads50} 条；默认的 "
    "prefork 池开 2 个进程是 {prefork2} 条。",
    "gevent20": "gevent 开 20 个协程、用步骤 4 的配置，每秒发出 {gevent20} 条（threads：{threads20}）；"
    "加上 `--prefetch-multiplier=2` 是 {gevent20p2}，用 `--disable-prefetch` 是 {gevent20dp}。",
    "rel_cpu": "和同一进程池上 Celery 的默认配置相比，加上步骤 4 的两项配置（延迟确认、预取 1）后，worker 每条短信"
    "耗费的 CPU 是默认配置的 {rel_settings_cpu}，发完一批的时间是 {rel_settings_time}；换成步骤 4 的整个任务（按引用名"
    "查号码、发送占位、日志打码），两者分别是 {rel_cpu} 和 {rel_time}；三种情况一共重复发送了 {rel_dups} 条。",
    "rel_base": "用 Celery 默认配置的普通任务每秒发出 {rel_base} 条（并发 50 时网关上限的 {rel_base_share}），"
    "worker 每条短信花 {rel_base_cpu_ms} CPU；步骤 4 的任务每条花 {rel_cpu_ms}。",
    "cpu_bound": "开 100 个线程每秒发出 {cpu_bound_100} 条，并不比 50 个线程（{cpu_bound_50}）多：限制 worker 的是它"
    "自己的 CPU（每条 {cpu_bound_ms}，都在一个进程里），而不是等服务商。",
    "noop_rank": "同样用 Redis 的几个任务队列里，Celery 处理空任务的速度排第 {noop_nth}（共 {noop_of} 个："
    "{noop_list}）；原因见“Celery 和同类的任务队列”一节。",
    "sms_rank": "换成发短信这种每个任务都要等服务商的工作，Celery 排第 {sms_nth}（共 {sms_of} 个：{sms_list}）。",
    "tuned": "在 RabbitMQ 上用官方“Optimizing”指南的配置，一个 Celery 进程每分钟处理 {tuned_per_min} 个空任务，"
    "是它介绍里那句“每分钟数百万”的 {tuned_share}（按一百万算）。",
}


def sentences(results: dict, language: dict[str, str]) -> list[str]:
    f = facts(results)
    said = []
    for template in language.values():
        try:
            said.append(template.format(**f))
        except KeyError:
            continue  # a figure this run did not measure
    return said
