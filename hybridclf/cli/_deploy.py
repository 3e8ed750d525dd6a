"""``hybridclf deploy``: the files that run ``hybridclf serve`` as a service."""

from ._common import (
    add_allow_pickle,
    add_model_dir,
    add_service_options,
    folder_not_stdout,
    out,
)


def format_parser(parser):
    parser.description = (
        "Write deployment files for 'hybridclf serve' on a model directory: a "
        "Dockerfile, a docker-compose.yml or a systemd unit, with the command "
        "that starts it (printed and in OUTPUT_DIR/README.txt)."
    )
    parser.add_argument("--type", required=True, dest="deploy_type",
                        choices=["docker", "compose", "systemd"],
                        help="what to write")
    parser.add_argument("--output-dir", required=True,
                        type=folder_not_stdout("the deployment files"),
                        help="folder to write into (created if missing)")
    add_model_dir(parser)
    add_service_options(parser)
    add_allow_pickle(parser)
    parser.add_argument("--force", action="store_true",
                        help="overwrite deployment files already in OUTPUT_DIR")


def run(args):
    from ..deploy import write_deployment

    result = write_deployment(args.deploy_type, args.output_dir, args.model_dir,
                              host=args.host, port=args.port, workers=args.workers,
                              api_key_env=args.api_key_env,
                              admin_key_env=args.admin_key_env,
                              allow_pickle=args.allow_pickle, force=args.force,
                              allowed_hosts=args.allowed_hosts)
    for path in result["files"]:
        out(f"wrote {path}")
    out("Start it with:")
    out(f"  {result['command']}")
    return 0
