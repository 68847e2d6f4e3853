"""Users and ACLs (authentication on): the same calls as ``rmqproxy user`` / ``rmqproxy acl``,
so only a user the ACLs allow to manage access (a Super user) gets past the pipeline."""

from __future__ import annotations

from aiohttp import web

from rmqproxy.console.pages_topics import when
from rmqproxy.console.web import call, form, redirect, render, services
from rmqproxy.pb.rmqproxy.admin.v1 import access_pb2 as api


async def users(request: web.Request) -> web.StreamResponse:
    admin = services(request).access_admin
    listed = await call(request, admin.ListUsers, api.ListUsersRequest())
    acls = await call(request, admin.ListAcls, api.ListAclsRequest())
    rows = [{"name": u.name, "type": u.type, "status": u.status, "created": when(u.created)} for u in listed.users]
    entries = [{"user": e.user, "resource": e.resource, "actions": " ".join(e.actions), "decision": e.decision,
                "sources": " ".join(e.sources) or "anywhere"} for e in acls.entries]
    return render(request, "users.html", users=rows, acls=entries)


async def create_user(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    message = api.CreateUserRequest(name=values.get("name", "").strip(), secret=values.get("secret", ""),
                                    type=values.get("type", "Normal"))
    await call(request, services(request).access_admin.CreateUser, message)
    raise redirect("/users", f"user {message.name} created")


async def user_status(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    action = request.match_info["action"]
    admin = services(request).access_admin
    if action == "delete":
        await call(request, admin.DeleteUser, api.DeleteUserRequest(name=name))
    else:
        await call(request, admin.UpdateUser,
                   api.UpdateUserRequest(name=name, status="enabled" if action == "enable" else "disabled"))
    raise redirect("/users", f"user {name}: {action}d")


async def put_acl(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    entry = api.AclEntry(user=values.get("user", "").strip(), resource=values.get("resource", "").strip(),
                         actions=values.get("actions", "").replace(",", " ").split(),
                         decision=values.get("decision", "Allow"), sources=values.get("sources", "").split())
    await call(request, services(request).access_admin.CreateAcl, api.AclRequest(entry=entry))
    raise redirect("/users", f"ACL entry for {entry.user} on {entry.resource} created")


async def delete_acl(request: web.Request) -> web.StreamResponse:
    values = await form(request)
    message = api.DeleteAclRequest(user=values.get("user", ""), resource=values.get("resource", ""),
                                   decision=values.get("decision", ""))
    await call(request, services(request).access_admin.DeleteAcl, message)
    raise redirect("/users", f"ACL entry for {message.user} on {message.resource} deleted")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/users", users)
    router.add_post("/users", create_user)
    router.add_post("/users/{name}/{action:enable|disable|delete}", user_status)
    router.add_post("/acls", put_acl)
    router.add_post("/acls/delete", delete_acl)
