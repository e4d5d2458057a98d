//! kube-sim: an in-process Kubernetes API server and workload simulator (in progress).
