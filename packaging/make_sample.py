"""Regenerate resources/sample-audit-report.pdf, the document the app opens on first run.

A fictitious eight-page municipal audit with facts spread across pages (incident counts,
names, amounts, dates), so a question like "How many incidents were reported in total?"
needs the whole document. Run: .venv/bin/python packaging/make_sample.py
"""

from __future__ import annotations

from pathlib import Path

import pymupdf

OUT = Path(__file__).resolve().parent.parent / "resources" / "sample-audit-report.pdf"

PAGES = [
    ("Riverton Water Authority - Internal Audit Report 2025",
     "Prepared by the Office of the City Auditor for the Riverton City Council. Lead auditor: "
     "Dana Whitfield. Fieldwork ran from 3 March 2025 to 27 June 2025 and covered the three "
     "treatment plants (North, Quarry Road and Elm Basin), the billing office and the "
     "capital programme. This report has eight pages. Each section lists the incidents found "
     "in that area; the total is not restated in the summary, by council convention.\n\n"
     "Scope. The audit examined safety incidents, procurement, billing accuracy and the "
     "condition of the distribution network. It did not examine pension liabilities, which "
     "are covered by the State Comptroller's separate review."),
    ("1. North Plant",
     "The North Plant treats 41 million litres per day. Auditors recorded 4 safety incidents "
     "at the North Plant: two chlorine sensor failures, one confined-space entry without a "
     "permit and one forklift collision. The plant manager, Luis Okafor, has replaced both "
     "sensors. The confined-space entry is the most serious finding of the audit because the "
     "gas monitor had not been calibrated since 2023.\n\nRecommendation N-1: calibrate all "
     "portable gas monitors every six months and log each calibration."),
    ("2. Quarry Road Plant",
     "Quarry Road is the oldest plant, commissioned in 1968. Auditors recorded 7 safety "
     "incidents at Quarry Road, most of them slips on wet stairways in the filter gallery. "
     "Overtime at Quarry Road reached 18 percent of paid hours, against a target of 8 "
     "percent, which the audit links to the incident rate.\n\nRecommendation Q-1: resurface "
     "the filter gallery stairways before the winter of 2025."),
    ("3. Elm Basin Plant",
     "Elm Basin opened in 2019 and performs best of the three plants. Auditors recorded 2 "
     "safety incidents at Elm Basin, both minor. Energy use per million litres fell by 11 "
     "percent after the new ultraviolet disinfection line was commissioned in January 2025."),
    ("4. Procurement",
     "The authority signed 312 purchase orders in the audit period. Auditors tested 60. "
     "Three contracts were split to stay under the 50,000 dollar tender threshold, all with "
     "the same supplier, Castellan Pipe & Valve. The combined value of the split contracts "
     "was 143,800 dollars. No safety incidents relate to procurement."),
    ("5. Billing office",
     "The billing office issued 88,412 bills. A sample of 500 bills found 9 errors, an error "
     "rate of 1.8 percent, mostly meter readings estimated for more than two consecutive "
     "quarters. Customers were over-billed by 23,150 dollars in total; refunds were issued "
     "on 14 August 2025."),
    ("6. Distribution network",
     "The network has 1,140 kilometres of mains. There were 3 safety incidents on network "
     "work sites, one of them a trench collapse on Marsh Lane on 9 April 2025 in which no one "
     "was injured. Main breaks fell from 212 in 2024 to 187 in 2025. Replacement of the "
     "cast-iron mains under Harbour Street is two years behind schedule."),
    ("7. Management response",
     "The general manager, Priya Raman, accepted all recommendations and committed to report "
     "progress to the council's audit committee every quarter, starting in October 2025. The "
     "next full audit is scheduled for 2027. Questions about this report go to the Office of "
     "the City Auditor, Riverton City Hall, room 410."),
]


def main() -> None:
    doc = pymupdf.open()
    for number, (title, body) in enumerate(PAGES, start=1):
        page = doc.new_page(width=595, height=842)  # A4 in points
        page.insert_text((56, 60), "Riverton Water Authority - Audit 2025", fontsize=8)
        page.insert_textbox(pymupdf.Rect(56, 90, 539, 140), title, fontsize=16, fontname="hebo")
        page.insert_textbox(pymupdf.Rect(56, 150, 539, 780), body, fontsize=11, fontname="helv")
        page.insert_text((280, 810), f"Page {number} of {len(PAGES)}", fontsize=8)
    doc.set_metadata({"title": "Riverton Water Authority - Internal Audit Report 2025",
                      "author": "Office of the City Auditor (fictitious sample)"})
    doc.save(OUT, garbage=4, deflate=True)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
