"""Generate a realistic CRIF file (ORE layout, comma-separated, quoted regulation lists) of N rows."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

HEADER = (
    "ValuationDate,TradeID,PortfolioID,ProductClass,RiskType,Qualifier,Bucket,Label1,Label2,"
    "AmountCurrency,Amount,AmountUSD,IMModel,collect_regulations,post_regulations\n"
)
TENORS = ["2w", "1m", "3m", "6m", "1y", "2y", "3y", "5y", "10y", "15y", "20y", "30y"]
CCYS = ["USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD"]
RISKS = [
    ("RatesFX", "Risk_IRCurve"),
    ("RatesFX", "Risk_IRVol"),
    ("RatesFX", "Risk_FX"),
    ("Credit", "Risk_CreditQ"),
    ("Equity", "Risk_Equity"),
]


def generate(path: Path, rows: int, seed: int = 7, *, same_amounts: bool = False) -> Path:
    """Write ``rows`` data rows; values vary so nothing is trivially compressible.

    ``same_amounts``: every row has the same amounts, so rows differ only in their ids -- the worst case
    for the exact-duplicate check, whose cheap fingerprint then matches on almost every row.
    """
    rnd = random.Random(seed)
    lines_per_chunk = 50_000
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        written = 0
        while written < rows:
            n = min(lines_per_chunk, rows - written)
            buf = []
            for i in range(written, written + n):
                pc, rt = RISKS[i % len(RISKS)]
                ccy = CCYS[i % len(CCYS)]
                amount = 1000.0 if same_amounts else rnd.uniform(-1e6, 1e6)
                label2 = "Libor3m" if rt == "Risk_IRCurve" else ""
                label1 = TENORS[i % len(TENORS)] if rt in ("Risk_IRCurve", "Risk_IRVol") else ""
                bucket = str(1 + i % 12) if rt != "Risk_FX" else ""
                buf.append(
                    f"2024-03-28,T{i:08d},PF{i % 97:03d},{pc},{rt},{ccy},{bucket},{label1},{label2},"
                    f'{ccy},{amount:.2f},{amount * 1.1:.2f},SIMM,"ESA,USPR","SEC,CFTC"\n'
                )
            out.write("".join(buf))
            written += n
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--same-amounts", action="store_true", help="rows differ only in their ids (worst case)")
    args = ap.parse_args()
    generate(args.path, args.rows, same_amounts=args.same_amounts)


if __name__ == "__main__":
    main()
