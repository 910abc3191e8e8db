"""Commands on who may sign in and call the API: create-token, revoke-token, create-user, disable-user."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from commands.common import fail
from web.services import services


@click.command("create-token")
@with_appcontext
@click.option("--role", required=True, help="admin, duty_officer, leader, unit_handler, grid_member, wall, "
                                            "device (only posts telemetry for the devices of its area), "
                                            "open311 (an Open311 client's api_key: reports and reads public fields only), "
                                            "hotline (the 12345 system: its tickets, callbacks and their changes)")
@click.option("--area", "area_code", default=None, help="区域编码（默认整个城市）")
@click.option("--unit", "unit_code", default=None, help="单位编码（处置单位角色必填）")
@click.option("--label", default="", help="备注")
def create_token_command(role: str, area_code: str | None, unit_code: str | None, label: str):
    """Print a bearer token for the API."""
    from data.tokens import create_token

    try:
        with services().db.session() as s:
            token = create_token(s, role, area_code, unit_code, label)
    except ValueError as exc:
        fail(str(exc))
    click.echo(token)


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--role", required=True, help="admin, duty_officer, leader, unit_handler, grid_member, wall")
@click.option("--area", "area_code", default=None, help="区域编码（默认整个城市）")
@click.option("--unit", "unit_code", default=None, help="单位编码（处置单位角色必填）")
@click.option("--name", "display_name", default="", help="显示名称")
@click.option("--reset", is_flag=True, help="只重设已有用户的密码")
@click.password_option("--password", help="密码（至少 8 位；不给则提示输入）")
def create_user_command(username: str, role: str, area_code: str | None, unit_code: str | None,
                        display_name: str, reset: bool, password: str):
    """Add a person who signs in at /login (or, with --reset, set their password)."""
    from sqlalchemy import select

    from data.models import Area
    from data.users import create_user, set_password

    try:
        with services().db.session() as s:
            if reset:
                set_password(s, username, password)
            else:
                if area_code is None:
                    area_code = s.scalar(select(Area.code).where(Area.level == 1).order_by(Area.code)) or ""
                create_user(s, username, password, role, area_code, unit_code, display_name)
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"已{'重设密码' if reset else '创建用户'}：{username}")


@click.command("disable-user")
@with_appcontext
@click.argument("username")
@click.option("--enable", is_flag=True, help="重新启用已停用的用户")
def disable_user_command(username: str, enable: bool):
    """Stop a person signing in (every session of theirs ends at once), or with --enable allow it again."""
    from data.users import set_active

    try:
        with services().db.session() as s:
            set_active(s, username, enable)
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"已{'启用' if enable else '停用'}用户：{username}" + ("" if enable else "（其所有会话已结束）"))


@click.command("revoke-token")
@with_appcontext
@click.argument("token")
def revoke_token_command(token: str):
    """Revoke a token, given in clear or by its id: the API refuses it and the wall display it signed in is signed out."""
    from data.tokens import revoke_token

    try:
        with services().db.session() as s:
            row = revoke_token(s, token)
            token_id = row.id
    except ValueError as exc:
        fail(str(exc))
    click.echo(f"已吊销令牌 {token_id}（用它登录的大屏已退出）")
