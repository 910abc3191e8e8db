"""/login and /logout: the sign-in form (CSRF-protected; failed tries limited per address and name and
per address across names, auth/throttle.py) and the sign-out that ends the session row."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

import auth
from dispatch import access

bp = Blueprint("auth", __name__, template_folder="templates")


@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next") or None
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(auth._safe_next(next_url, current_user.principal.role))
        return render_template("login.html", error=None, next=next_url, username="")
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    if not username or not password:
        return render_template("login.html", error="请输入用户名和密码", next=next_url, username=username), 400
    wait = auth.login_wait_seconds(username)
    if wait:
        return render_template("login.html", error=f"登录失败次数过多，请 {-(-wait // 60)} 分钟后再试",
                               next=next_url, username=username), 429
    signed = auth.sign_in(username, password)
    if signed is None:
        auth.note_failed_login(username)
        return render_template("login.html", error="用户名或密码错误", next=next_url, username=username), 401
    return redirect(auth._safe_next(next_url, signed.principal.role))


@bp.route("/logout", methods=["POST"])
def logout():
    auth.sign_out()
    return redirect(url_for("auth.login"))


@bp.get("/logout")
def logout_by_get():
    # Signing out changes state: only the menu's button (a POST with the CSRF token) does it. Without
    # this rule the Dash page catch-all would answer GET /logout with the app shell.
    return ("请使用页面上的“退出登录”按钮退出", 405, {"Allow": "POST", "Content-Type": "text/plain; charset=utf-8"})


@bp.app_context_processor
def _menu():
    return {"role_pages": access.pages_of(current_user.principal.role) if current_user.is_authenticated else []}
