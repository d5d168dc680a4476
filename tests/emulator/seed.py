#!/usr/bin/env python3
"""Seeds moto with a load-balancer fleet and CloudWatch datapoints, from a JSON spec on stdin.

Spec:
  {"region": "us-east-1",
   "load_balancers": [
     {"key": "shop", "type": "application|network|classic", "name": "shop", "tags": {"team": "web"},
      "idle_timeout": 30, "targets": 2, "stopped_targets": 1, "target_groups": ["shop-web"],
      "ip_targets": ["127.0.0.1:8080"]}],
   "datapoints": [
     {"lb": "shop", "target_group": "shop-web" (optional), "metric": "HTTPCode_ELB_502_Count",
      "timestamp": 1795316400, "value": 3}]}
A spec with only "datapoints" adds datapoints to a fleet seeded before (keys come from --fleet);
"delete": ["<key>", ...] with --fleet deletes those load balancers (and leaves their datapoints,
as CloudWatch keeps a deleted load balancer's metrics).

Prints the fleet as JSON: {"<key>": {"dimension": "...", "arn": "...", "dns_name": "...",
"target_groups": {"<name>": "targetgroup/<name>/<id>"}, "instances": ["i-..."]}}.
Usage: seed.py --endpoint http://127.0.0.1:PORT [--fleet fleet.json] < spec.json
"""

import argparse
import datetime
import json
import re
import sys

import boto3

NAMESPACES = {"application": "AWS/ApplicationELB", "network": "AWS/NetworkELB", "classic": "AWS/ELB"}


def clients(endpoint, region):
    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    return {name: boto3.client(name, **kw) for name in ("ec2", "elbv2", "elb", "cloudwatch")}


def seed_fleet(c, spec):
    region = spec["region"]
    vpc = c["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        c["ec2"].create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    fleet = {}
    for lb in spec.get("load_balancers", []):
        count = lb.get("targets", 0)
        instances = []
        if count:
            reservation = c["ec2"].run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count)
            instances = [i["InstanceId"] for i in reservation["Instances"]]
        stopped = instances[: lb.get("stopped_targets", 0)]
        tags = [{"Key": k, "Value": v} for k, v in lb.get("tags", {}).items()]
        entry = {"instances": instances, "target_groups": {}}
        if lb["type"] == "classic":
            kwargs = dict(
                LoadBalancerName=lb["name"],
                Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
                AvailabilityZones=[f"{region}a"],
            )
            if tags:
                kwargs["Tags"] = tags
            created = c["elb"].create_load_balancer(**kwargs)
            if instances:
                c["elb"].register_instances_with_load_balancer(
                    LoadBalancerName=lb["name"], Instances=[{"InstanceId": i} for i in instances]
                )
            if "idle_timeout" in lb:
                c["elb"].modify_load_balancer_attributes(
                    LoadBalancerName=lb["name"],
                    LoadBalancerAttributes={"ConnectionSettings": {"IdleTimeout": lb["idle_timeout"]}},
                )
            entry.update(dimension=lb["name"], arn="", dns_name=created["DNSName"])
        else:
            kwargs = dict(Name=lb["name"], Subnets=subnets, Type=lb["type"], Scheme="internet-facing")
            if tags:
                kwargs["Tags"] = tags
            created = c["elbv2"].create_load_balancer(**kwargs)["LoadBalancers"][0]
            arn = created["LoadBalancerArn"]
            entry.update(dimension=arn.split(":loadbalancer/", 1)[1], arn=arn, dns_name=created["DNSName"])
            protocol = "HTTP" if lb["type"] == "application" else "TCP"
            for index, name in enumerate(lb.get("target_groups", [])):
                group = c["elbv2"].create_target_group(
                    Name=name, Protocol=protocol, Port=8080, VpcId=vpc, TargetType="instance"
                )["TargetGroups"][0]
                if instances:
                    c["elbv2"].register_targets(
                        TargetGroupArn=group["TargetGroupArn"],
                        Targets=[{"Id": i, "Port": 8080} for i in instances],
                    )
                c["elbv2"].create_listener(
                    LoadBalancerArn=arn,
                    Protocol=protocol,
                    Port=80 + index,
                    DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
                )
                entry["target_groups"][name] = group["TargetGroupArn"].rsplit(":", 1)[1]
            if lb.get("ip_targets"):
                # Targets registered by IP address (target type ip), in a group of their own.
                group = c["elbv2"].create_target_group(
                    Name=f"{lb['name']}-ip", Protocol=protocol, Port=8080, VpcId=vpc, TargetType="ip"
                )["TargetGroups"][0]
                targets = []
                for target in lb["ip_targets"]:
                    ip, port = target.rsplit(":", 1)
                    targets.append({"Id": ip, "Port": int(port)})
                c["elbv2"].register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=targets)
                c["elbv2"].create_listener(
                    LoadBalancerArn=arn,
                    Protocol=protocol,
                    Port=8000,
                    DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
                )
                entry["target_groups"][f"{lb['name']}-ip"] = group["TargetGroupArn"].rsplit(":", 1)[1]
            if "idle_timeout" in lb:
                c["elbv2"].modify_load_balancer_attributes(
                    LoadBalancerArn=arn,
                    Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": str(lb["idle_timeout"])}],
                )
        if stopped:
            c["ec2"].stop_instances(InstanceIds=stopped)
        entry["type"] = lb["type"]
        fleet[lb["key"]] = entry
    return fleet


# ALB publishes HTTPCode_ELB_5XX_Count as every 5xx the load balancer generated, the per-code
# counts included ("the number of HTTP 5XX server error codes that originate from the load
# balancer", reported when non-zero): a datapoint for one code is one for the class too.
ELB_CODE = re.compile(r"HTTPCode_ELB_5\d\d_Count")


def with_derived(fleet, datapoints):
    derived = list(datapoints)
    for point in datapoints:
        if fleet[point["lb"]]["type"] == "application" and ELB_CODE.fullmatch(point["metric"]):
            derived.append(dict(point, metric="HTTPCode_ELB_5XX_Count"))
    return derived


def seed_datapoints(c, fleet, datapoints):
    batch = {}
    for point in with_derived(fleet, datapoints):
        lb = fleet[point["lb"]]
        namespace = NAMESPACES[lb["type"]]
        name = "LoadBalancerName" if lb["type"] == "classic" else "LoadBalancer"
        dimensions = [{"Name": name, "Value": lb["dimension"]}]
        if point.get("target_group"):
            dimensions.append({"Name": "TargetGroup", "Value": lb["target_groups"][point["target_group"]]})
        batch.setdefault(namespace, []).append(
            {
                "MetricName": point["metric"],
                "Dimensions": dimensions,
                "Timestamp": datetime.datetime.fromtimestamp(point["timestamp"], tz=datetime.timezone.utc),
                "Value": point["value"],
            }
        )
    for namespace, data in batch.items():
        for start in range(0, len(data), 500):
            c["cloudwatch"].put_metric_data(Namespace=namespace, MetricData=data[start : start + 500])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--fleet", help="a fleet printed by an earlier run, to add datapoints to")
    args = parser.parse_args()
    spec = json.load(sys.stdin)
    c = clients(args.endpoint, spec.get("region", "us-east-1"))
    if args.fleet:
        with open(args.fleet) as f:
            fleet = json.load(f)
    else:
        fleet = seed_fleet(c, spec)
    seed_datapoints(c, fleet, spec.get("datapoints", []))
    for key in spec.get("delete", []):
        lb = fleet.pop(key)
        if lb["type"] == "classic":
            c["elb"].delete_load_balancer(LoadBalancerName=lb["dimension"])
        else:
            c["elbv2"].delete_load_balancer(LoadBalancerArn=lb["arn"])
    json.dump(fleet, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
