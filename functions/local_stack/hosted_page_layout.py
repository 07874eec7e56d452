"""What every hosted page of the Stripe emulator shares: where the pages live, their style and the
HTML document around them. Plain HTML, no JavaScript, no assets."""

from __future__ import annotations

import html

CHECKOUT_PATH = "/c/pay/"
PORTAL_PATH = "/p/session/"
INVOICE_PATH = "/i/"
THREE_D_SECURE_PATH = "/3d_secure_2/hosted"

_CSS = """
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1a1f36;background:#fff;font-size:15px;line-height:1.45}
a{color:#635bff;text-decoration:none}a:hover{text-decoration:underline}
.badge{display:inline-block;margin-left:10px;padding:2px 7px;border-radius:4px;background:#ffde92;color:#983705;
 font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;vertical-align:middle}
.muted{color:#697386}.small{font-size:13px}
.checkout{display:flex;min-height:100vh;flex-wrap:wrap}
.summary{flex:1 1 420px;background:#f6f9fc;padding:56px 48px;border-right:1px solid #e3e8ee}
.pay{flex:1 1 420px;padding:56px 48px;max-width:560px}
.summary-inner{max-width:420px;margin-left:auto}
.headline{font-size:36px;font-weight:600;margin:6px 0 28px}.headline span{font-size:15px;color:#697386;font-weight:400}
.lines{list-style:none;padding:0;margin:0}
.lines li{display:flex;justify-content:space-between;gap:16px;padding:12px 0;border-bottom:1px solid #e3e8ee}
.lines small{display:block;color:#697386;font-size:13px}
.total{display:flex;justify-content:space-between;padding:16px 0;font-weight:600}
h1{font-size:22px;margin:0 0 20px}h2{font-size:17px;margin:0 0 12px}
label{display:block;font-size:13px;color:#3c4257;margin:16px 0 6px;font-weight:500}
input{width:100%;padding:10px 12px;border:1px solid #e0e6eb;border-radius:6px;font-size:15px;
 box-shadow:0 1px 1px rgba(0,0,0,.03)}
input:focus{outline:none;border-color:#635bff;box-shadow:0 0 0 3px rgba(99,91,255,.25)}
.card-group input{border-radius:0}.card-group #card-number{border-radius:6px 6px 0 0}
.card-row{display:flex}.card-row input{border-top:0}.card-row input:first-child{border-radius:0 0 0 6px}
.card-row input:last-child{border-left:0;border-radius:0 0 6px 0}
button{appearance:none;border:0;border-radius:6px;padding:12px 16px;font-size:15px;font-weight:600;cursor:pointer}
.primary{width:100%;margin-top:24px;background:#635bff;color:#fff}.primary:hover{background:#5851e5}
.secondary{background:#fff;color:#1a1f36;border:1px solid #d5dbe1}.danger{background:#fff;color:#df1b41;border:1px solid #f2b8c6}
.error{margin:0 0 12px;padding:10px 12px;border-radius:6px;background:#fff0f3;color:#c0123c;border:1px solid #f5c2cf}
.hint{margin-top:16px;font-size:13px;color:#697386}
.portal{max-width:760px;margin:0 auto;padding:40px 24px}
.topbar{display:flex;justify-content:space-between;align-items:center;margin-bottom:32px}
.sub{border:1px solid #e3e8ee;border-radius:8px;padding:20px 24px;margin-bottom:16px}
.sub-head{display:flex;justify-content:space-between;align-items:center;gap:12px}
.sub ul{margin:8px 0 12px;padding-left:18px}
.status{padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#e3e8ee;color:#3c4257}
.status-active,.status-trialing{background:#d7f7c2;color:#006908}
.status-past_due,.status-unpaid,.status-open{background:#ffe7f2;color:#b3093c}
.status-paid{background:#d7f7c2;color:#006908}.status-void{background:#e3e8ee;color:#697386}
h1 .status{font-size:13px;vertical-align:middle;margin-left:8px}
.invoice-row{align-items:center}.invoice-row>span{flex:1}.invoice-link{min-width:40px;text-align:right}
.pay-invoice{margin-top:28px}.pay-invoice form{margin:0 0 12px}.card-update{max-width:420px}
.card-update button{margin-top:12px}
.notice{color:#983705;font-weight:500}
.actions{display:flex;gap:10px;flex-wrap:wrap;margin-top:12px}.actions form{margin:0}
.message{max-width:480px;margin:15vh auto;padding:0 24px;text-align:center}
.challenge{max-width:440px;margin:10vh auto;padding:32px;border:1px solid #e3e8ee;border-radius:8px;text-align:center}
.challenge dl{display:grid;grid-template-columns:auto 1fr;gap:6px 16px;text-align:left;margin:20px 0}
.challenge dt{color:#697386}.challenge dd{margin:0;font-weight:500}
.challenge .actions{justify-content:center}.challenge button{min-width:120px}.challenge .primary{width:auto;margin-top:0}
"""


def e(value: object) -> str:
    """`value` escaped for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def document(title: str, body: str) -> bytes:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    ).encode()


def message_page(title: str, message: str, link: tuple[str, str] | None = None) -> bytes:
    back = f'<p><a id="back" href="{e(link[0])}">{e(link[1])}</a></p>' if link else ""
    return document(
        title,
        f'<main class="message"><h1 id="message-title">{e(title)}</h1>'
        f'<p id="message" class="muted">{e(message)}</p>{back}</main>',
    )


def error_block(error: str | None) -> str:
    """The alert a page shows above its form ("" when there is no error)."""
    return f'<div id="error" class="error" role="alert">{e(error)}</div>' if error else ""
