import hashlib

from django.http import HttpResponse, JsonResponse
from django.template import engines

FORM = engines["django"].from_string(
    '<html><body><form method="post" enctype="multipart/form-data">'
    '{% csrf_token %}<input name="name"><input type="file" name="file">'
    '<button>Send</button></form></body></html>')


def index(request):
    return HttpResponse("<h1>rwsgi django test site</h1>")


def form(request):
    if request.method == "POST":
        return JsonResponse({"name": request.POST.get("name"), "ok": True})
    return HttpResponse(FORM.render({}, request))


def upload(request):
    if request.method != "POST":
        return HttpResponse(FORM.render({}, request))
    f = request.FILES["file"]
    h = hashlib.sha256()
    size = 0
    for chunk in f.chunks():
        h.update(chunk)
        size += len(chunk)
    return JsonResponse({"name": f.name, "size": size, "sha256": h.hexdigest(),
                        "handler": type(f).__name__})


def info(request):
    return JsonResponse({"path": request.path, "path_info": request.path_info,
                        "script_name": request.META.get("SCRIPT_NAME"),
                        "host": request.get_host(), "method": request.method})
