"""``hybridclf serve``: a model directory over HTTP."""

import sys

from ._common import (
    add_allow_pickle,
    add_max_pixels,
    add_model_dir,
    add_service_options,
    folder_not_stdout,
    out,
    positive_float,
    positive_int,
)


def format_parser(parser):
    parser.description = (
        "Serve a model directory over HTTP (FastAPI + uvicorn): POST /predict, "
        "/predict/file and /predict/batch; GET /health, /ready and /metrics; "
        "the API is documented at /docs. Needs the 'serve' extra."
    )
    add_model_dir(parser)
    add_service_options(parser)
    parser.add_argument("--max-body-mb", type=positive_float, default=10.0,
                        metavar="MB",
                        help="largest request body in MB (default: %(default)s)")
    parser.add_argument(
        "--n-jobs", type=positive_int, default=None, metavar="N",
        help="threads per prediction in each worker; the feature blocks of one "
        "image run side by side (default: the cores divided among the workers)",
    )
    parser.add_argument("--max-inflight-mb", type=positive_float, default=None,
                        metavar="MB",
                        help="most MB of request bodies received or being "
                        "answered at once in each worker; a request past it is "
                        "answered 503 with Retry-After (default: 8 x "
                        "--max-body-mb)")
    add_max_pixels(parser, model=False)
    parser.add_argument("--read-timeout", type=positive_float, default=30.0,
                        metavar="S",
                        help="seconds a client has to send its request body (408 "
                        "after) and each request's headers (closed after) "
                        "(default: %(default)s)")
    parser.add_argument("--limit-concurrency", type=positive_int, default=None,
                        metavar="N", help="most requests answered at once in "
                        "each worker; one more is answered 503 with Retry-After "
                        "(/health, /ready and /metrics never are) (default: no "
                        "limit)")
    add_allow_pickle(parser)
    parser.add_argument("--feedback-dir", default=None, metavar="DIR",
                        type=folder_not_stdout("the feedback photos"),
                        help="enable POST /feedback: corrected photos are stored "
                        "in DIR/<label>/ for training (default: off)")
    parser.add_argument("--feedback-max-mb", type=positive_float, default=1024.0,
                        metavar="MB",
                        help="most MB of photos the feedback folder may hold; a "
                        "new correction past it is answered 507 (default: "
                        "%(default)s)")
    parser.add_argument("--log-predictions", default=None, metavar="FILE",
                        help="append one JSON line per answer to FILE (time, "
                        "class, confidence, model version; never the image)")


def run(args):
    try:
        from ..serve import serve
    except ImportError as exc:
        sys.stderr.write(
            f"error: 'hybridclf serve' needs the serve extra ({exc}). Install it "
            "with: pip install 'hybridclf[serve]'\n")
        return 1
    # serve loads and checks the model as a reload does (manifest, classes,
    # embedding index, warm-up) before uvicorn starts: a bad one is one error
    # line, exit 1, and no "Serving" line
    limits = {"max_pixels": args.max_pixels} if args.max_pixels else {}
    serve(args.model_dir, host=args.host, port=args.port, workers=args.workers,
          max_body_mb=args.max_body_mb, max_inflight_mb=args.max_inflight_mb,
          api_key_env=args.api_key_env, admin_key_env=args.admin_key_env,
          threads=args.n_jobs, read_timeout=args.read_timeout,
          allow_pickle=args.allow_pickle,
          limit_concurrency=args.limit_concurrency, feedback_dir=args.feedback_dir,
          feedback_max_mb=args.feedback_max_mb,
          log_predictions=args.log_predictions, allowed_hosts=args.allowed_hosts,
          on_checked=lambda: out(
              f"Serving {args.model_dir} on http://{args.host}:{args.port} "
              "(docs at /docs); press Ctrl+C to stop"),
          **limits)
    return 0
