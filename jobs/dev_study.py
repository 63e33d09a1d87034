#!/usr/bin/env python3
"""dev_study.py CORPUS QUERIES [--budgets LIST] — the infoflow-dev variant study (docs/results.md) on
the NumPy oracle (../shared/reference/ref_infoflow.py, float64, stories260K). For every query it
builds the re-rotated cache, the exact (full-prefill) K/V of the context and the scoring pass's
attention once, then scores every variant, selects, recomputes and prints mean KL(full || variant)
per budget, one JSON line per (variant, budget). Variants: see VARIANTS below and docs/method.md.
Use /usr/bin/python3 (numpy)."""
import argparse, json, math, os, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'shared', 'reference'))
import ref_infoflow as R  # noqa: E402


def signals(m, tok, docs, prompt, band):
    bodies = [tok.encode(d, False) for d in docs]
    ctx = [1] + sum(bodies, []); T = len(ctx)
    ptoks = tok.encode(prompt, False); P = len(ptoks); ppos = np.arange(T, T + P)
    full_logits, _, _, _ = m.prefill(ctx + ptoks, np.arange(T + P))
    _, fK, fV, _ = m.prefill(ctx, np.arange(T))           # exact K/V of the context, every layer
    Ks = [[] for _ in range(m.L)]; Vs = [[] for _ in range(m.L)]; off = 0; starts = []; inpos = np.zeros(T)
    for c, b in enumerate(bodies):
        K, V = R.chunk_kv(m, b, keep_bos=(c == 0))
        n = len(b) + (1 if c == 0 else 0); delta = 0 if c == 0 else off - 1
        starts.append((off, off + n))
        if c > 0: inpos[off:off + n] = np.arange(n)
        else: inpos[:] = 0
        for l in range(m.L):
            Ks[l].append(R.rerotate(m, K[l], delta) if delta else K[l]); Vs[l].append(V[l])
        off += n
    K = [np.concatenate(k) for k in Ks]; V = [np.concatenate(v) for v in Vs]
    _, _, _, probs = m.prefill(ptoks, ppos, [k.copy() for k in K], [v.copy() for v in V], np.arange(T),
                               stop_after=m.L - 1, probs_layers=set(range(m.L)))
    g = m.H // m.KV
    s = {}
    s['att_norm'] = np.mean([np.sqrt((probs[l].mean(0)[:, :T] ** 2).sum(0)) for l in band], 0)
    s['att_sum'] = np.mean([probs[l].mean(0)[:, :T].sum(0) for l in band], 0)
    for l in range(1, m.L):
        s[f'dV{l}'] = np.sqrt(((fV[l] - V[l]) ** 2).sum((1, 2)))
        s[f'dK{l}'] = np.sqrt(((fK[l] - K[l]) ** 2).sum((1, 2)))
    dv1h = np.sqrt(((fV[1] - V[1]) ** 2).sum(2))           # [T, KV]
    # first-order error per head: sqrt(sum_h (sum_q A_h[q,k])^2 |dv_{g(h),k}|^2), band mean
    s['err1'] = np.mean([np.sqrt(((probs[l][:, :, :T].sum(1).T) ** 2 * np.repeat(dv1h, g, 1) ** 2).sum(1))
                         for l in band], 0)
    # the same with the deviation at the scoring layer itself (an oracle: needs exact K/V there)
    s['err_same'] = np.mean([np.sqrt(((probs[l][:, :, :T].sum(1).T) ** 2 *
                                      np.repeat(np.sqrt(((fV[l] - V[l]) ** 2).sum(2)), g, 1) ** 2).sum(1))
                             for l in band], 0)
    s['posprior'] = np.where(np.arange(T) >= starts[0][1], 1.0 / np.sqrt(1.0 + inpos), 0.0)
    return dict(ctx=ctx, T=T, ptoks=ptoks, ppos=ppos, full=full_logits, K=K, V=V, first_end=starts[0][1], s=s)


def rank_of(x):  # 0 = best (largest)
    r = np.empty(len(x)); r[np.argsort(-x, kind='stable')] = np.arange(len(x)); return r


VARIANTS = {
    'infoflow': lambda s: s['att_norm'],
    'cacheblend': lambda s: s['dV1'],
    'dev': lambda s: s['att_norm'] * s['dV1'],                  # the oracle's infoflow-dev
    'dev-K': lambda s: s['att_norm'] * s['dK1'],
    'dev-KV': lambda s: s['att_norm'] * np.sqrt(s['dV1'] ** 2 + s['dK1'] ** 2),
    'dev-layer2': lambda s: s['att_norm'] * s['dV2'],
    'dev-layer3': lambda s: s['att_norm'] * s['dV3'],
    'dev-pow0.5': lambda s: s['att_norm'] * s['dV1'] ** 0.5,
    'dev-pow2': lambda s: s['att_norm'] * s['dV1'] ** 2,
    'dev-ranksum': lambda s: -(rank_of(s['att_norm']) + rank_of(s['dV1'])),
    'dev-attnsum': lambda s: s['att_sum'] * s['dV1'],
    'dev-err': lambda s: s['err1'],
    'dev-err-same': lambda s: s['err_same'],
    'dev-posprior': lambda s: s['att_norm'] * s['posprior'],
}


def kl_of(m, q, sel):
    K = [k.copy() for k in q['K']]; V = [v.copy() for v in q['V']]; kpos = np.arange(q['T'])
    if len(sel):
        x = m.emb[[q['ctx'][i] for i in sel]].astype(np.float64)
        for l in range(m.L):
            x, K[l], V[l], _, _ = m.block(l, x, sel, K, V, kpos, write_idx=sel)
    logits, _, _, _ = m.prefill(q['ptoks'], q['ppos'], K, V, kpos)
    pf, pg = R.softmax(q['full']), R.softmax(logits)
    return float((pf * (np.log(pf + 1e-30) - np.log(pg + 1e-30))).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('corpus'); ap.add_argument('queries')
    ap.add_argument('--budgets', default='0.02,0.05,0.1,0.15,0.3,0.5')
    ap.add_argument('--variants', default=','.join(VARIANTS))
    ap.add_argument('--layers', default='2-3')
    a = ap.parse_args()
    lo, hi = map(int, a.layers.split('-')); band = list(range(lo, hi + 1))
    m = R.Model(os.path.join(R.MODEL, 'stories260K.bin')); tok = R.Tok(os.path.join(R.MODEL, 'tok512.bin'))
    docs = {json.loads(l)['id']: json.loads(l)['text'] for l in open(a.corpus)}
    qs = [json.loads(l) for l in open(a.queries)]
    budgets = [float(b) for b in a.budgets.split(',')]; names = a.variants.split(',')
    kls = {(v, b): [] for v in names for b in budgets}
    for q in qs:
        d = signals(m, tok, [docs[i] for i in q['docs']], q['prompt'], band)
        for v in names:
            sc = VARIANTS[v](d['s']).astype(np.float64).copy()
            if v == 'infoflow': sc[:d['first_end']] = -np.inf
            for b in budgets:
                n = int(math.floor(b * d['T']))
                if v == 'infoflow': n = min(n, d['T'] - d['first_end'])
                sel = np.sort(np.argsort(-sc, kind='stable')[:n])
                kls[(v, b)].append(kl_of(m, d, sel))
        print(f'# {q["id"]} done', file=sys.stderr, flush=True)
    for v in names:
        for b in budgets:
            x = np.array(kls[(v, b)])
            print(json.dumps({'variant': v, 'budget': b, 'n': len(x), 'kl': float(x.mean()),
                              'kl_ci': float(1.96 * x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0}), flush=True)


if __name__ == '__main__':
    main()
