# Sweeps on a Slurm cluster: sourced by ./kvmlab (bash), which provides
# $top, $bin, $results, $run_id, tm_opts and die().
#
#   ./kvmlab sweep SPEC --slurm [--partition P] [--max-parallel N] [--time MIN]
#                               [--chunk RUNS] [--slurm-script-only]
#   ./kvmlab sweep-status RUN_ID
#
# The plan of the runs still missing from results/<run-id>/runs.csv (the
# same `sweep-plan` a local sweep uses) is cut into chunks: one chunk is one
# hypervisor's runs, at most RUNS of them, and one array task boots the test
# machine once for it. A second job, dependent on the whole array (afterany),
# merges the tasks' rows into runs.csv and writes report.md. Everything lives
# in results/<run-id>/slurm/:
#
#   plan-I            the runs of array task I (sweep-plan's lines)
#   sweep.sbatch      the array job; merge.sbatch the merge job
#   token             a random word the tasks must find: the proof they see
#                     this folder (a shared filesystem)
#   jobs              the array job's id, then the merge job's
#   task-I.out        a task's output; task-I.status its exit status and node
#   chunk-I/          a task's rows until the merge takes them in
#
# Resume is the local sweep's: submitting the same --run-id again plans only
# the runs not yet ok in runs.csv, after taking in any chunk a merge missed.

# A boot costs about 15 s before the first run; a run takes 2-10 s. Chunks of
# at least this many runs keep the boots under a third of a task's time.
SLURM_MIN_CHUNK=10

slurm_usage="sweep SPEC --slurm [--partition P] [--max-parallel N] [--time MIN] [--chunk RUNS] [--slurm-script-only]"

# Is PATH on a filesystem other machines can share? (Local ones are not.)
slurm_shared_fs() {
	case $(stat -f -c %T "$1" 2>/dev/null) in
	nfs*|lustre|gpfs|beegfs|ceph|cifs|smb2|smb|fuse*|9p|glusterfs|panfs|wekafs|afs|orangefs) return 0 ;;
	*) return 1 ;;
	esac
}

# The tree and the results must be visible from every node of the
# partition: on a one-node cluster that is this machine, elsewhere a shared
# filesystem. (Each task checks again, with the token.)
slurm_check_shared() {
	local partition=$1 dir=$2 nodes me p
	nodes=$(sinfo -h ${partition:+-p "$partition"} -o %N 2>/dev/null | xargs -r scontrol show hostnames 2>/dev/null | sort -u)
	[ -n "$nodes" ] || die "sweep --slurm: no nodes in partition '${partition:-(default)}' (sinfo)"
	me=$(hostname -s)
	if [ "$nodes" = "$me" ] || [ "$nodes" = "$(hostname)" ]; then
		return 0
	fi
	for p in "$top" "$dir"; do
		slurm_shared_fs "$p" || die "sweep --slurm: $p is on a local filesystem ($(stat -f -c %T "$p")), but the partition's nodes are $(echo $nodes | tr ' ' ','): the built tree and the results folder must be on a filesystem every node mounts at the same path (NFS, Lustre, ...)"
	done
}

# Tasks that finished before their merge job ran (it was cancelled, or the
# array is being resubmitted): their rows go in now.
slurm_take_chunks() {
	local dir=$1 c
	for c in "$dir"/slurm/chunk-*/boot; do
		[ -d "$c" ] || continue
		"$bin" sweep-merge "$dir" "$c" || return 1
		rm -rf "$(dirname "$c")"
	done
}

sweep_slurm() {
	local spec=$1 dir=$2
	shift 2
	local partition= maxpar=4 minutes=60 chunk= script_only=0
	while [ $# -gt 0 ]; do
		case $1 in
		--partition) [ $# -ge 2 ] || die "--partition needs a name"; partition=$2; shift ;;
		--max-parallel) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--max-parallel needs a positive count"; maxpar=$2; shift ;;
		--time) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--time needs minutes (a positive number)"; minutes=$2; shift ;;
		--chunk) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--chunk needs a positive number of runs"; chunk=$2; shift ;;
		--slurm-script-only) script_only=1 ;;
		*) die "sweep: unknown option '$1' ($slurm_usage)" ;;
		esac
		shift
	done
	[[ " ${tm_opts[*]} " == *" --tm bochs "* ]] && die "sweep --slurm: the Bochs test machine is not supported there (one boot takes minutes; run it locally)"
	command -v sbatch > /dev/null || die "sweep --slurm: sbatch not found (Slurm's client tools: apt-get install slurm-client)"
	local sd=$dir/slurm
	mkdir -p "$sd" || die "cannot create $sd"
	if [ -s "$sd/jobs" ] && [ "$script_only" = 0 ]; then
		local active
		active=$(squeue -h -j "$(paste -sd, "$sd/jobs")" -o %i 2>/dev/null)
		[ -z "$active" ] || die "sweep --slurm: jobs of run '$run_id' are still queued or running ($(echo $active | tr ' ' ',')): wait for them (./kvmlab sweep-status $run_id) or scancel them"
	fi
	slurm_take_chunks "$dir" || die "sweep --slurm: could not merge the rows left in $sd"

	local counts total todo
	counts=$("$bin" sweep-plan "$spec" "$dir" 2>&1 > "$sd/.plan") || { echo "$counts" >&2; exit 2; }
	echo "$counts" >&2
	total=$(echo "$counts" | sed -n 's/.*: \([0-9]*\) runs, .*/\1/p')
	todo=$(wc -l < "$sd/.plan")
	if [ "$todo" = 0 ]; then
		rm -f "$sd/.plan"
		echo "kvmlab: sweep: all $total runs are done; nothing to submit"
		"$bin" report "$dir" > /dev/null && echo "report: $dir/report.md"
		return 0
	fi
	[ "$script_only" = 1 ] || slurm_check_shared "$partition" "$dir"

	# Chunk size: the user's, else about four chunks per parallel slot (for
	# balance) but never so few runs that the boot is wasted.
	if [ -z "$chunk" ]; then
		chunk=$(( (todo + 4 * maxpar - 1) / (4 * maxpar) ))
		[ "$chunk" -ge "$SLURM_MIN_CHUNK" ] || chunk=$SLURM_MIN_CHUNK
	fi
	rm -f "$sd"/plan-* "$sd"/task-*.status
	local ntasks
	ntasks=$(awk -F'\t' -v dir="$sd" -v chunk="$chunk" '
		$1 != hv || n == chunk { hv = $1; n = 0; t++ }
		{ print > (dir "/plan-" (t - 1)); n++ }
		END { print t }' "$sd/.plan")
	rm -f "$sd/.plan"

	local token cpus=1 tmo
	token=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
	echo "$token" > "$sd/token"
	# The test machine runs its command on --tm-smp CPUs plus CPU 0.
	for ((i = 0; i < ${#tm_opts[@]}; i++)); do
		[ "${tm_opts[i]}" = --smp ] && cpus=$(( tm_opts[i+1] + 1 ))
	done
	tmo=$(( minutes * 60 - 60 ))
	[ "$tmo" -ge 120 ] || tmo=120
	{
		echo "#!/bin/bash"
		echo "# kvmlab sweep $run_id: $todo runs of $(basename "$spec") in $ntasks test-machine boots."
		echo "# Written by: ./kvmlab sweep $spec --slurm (harness/experiment/slurm.sh)"
		echo "#SBATCH --job-name=kvmlab-$run_id"
		echo "#SBATCH --array=0-$((ntasks - 1))%$maxpar"
		echo "#SBATCH --cpus-per-task=$cpus"
		echo "#SBATCH --time=$minutes"
		echo "#SBATCH --output=$sd/task-%a.out"
		echo "#SBATCH --chdir=$top"
		[ -n "$partition" ] && echo "#SBATCH --partition=$partition"
		printf 'exec %q --results %q --run-id %q' "$top/kvmlab" "$results" "$run_id"
		[ ${#tm_opts[@]} = 0 ] || printf ' %q' "${tm_opts[@]}"
		printf ' --tm-timeout %d sweep-task %q "$SLURM_ARRAY_TASK_ID" %q\n' "$tmo" "$sd" "$token"
	} > "$sd/sweep.sbatch"
	{
		echo "#!/bin/bash"
		echo "# kvmlab sweep $run_id: merges the array's rows into runs.csv, writes report.md."
		echo "#SBATCH --job-name=kvmlab-$run_id-merge"
		echo "#SBATCH --time=30"
		echo "#SBATCH --output=$sd/merge.out"
		echo "#SBATCH --chdir=$top"
		[ -n "$partition" ] && echo "#SBATCH --partition=$partition"
		printf 'exec %q --results %q --run-id %q sweep-merge-slurm\n' "$top/kvmlab" "$results" "$run_id"
	} > "$sd/merge.sbatch"
	chmod +x "$sd/sweep.sbatch" "$sd/merge.sbatch"
	if [ "$script_only" = 1 ]; then
		echo "kvmlab: sweep: $todo runs in $ntasks array tasks (chunks of up to $chunk runs)"
		echo "batch script: $sd/sweep.sbatch (then: sbatch --dependency=afterany:<its job id> $sd/merge.sbatch)"
		return 0
	fi
	local jid mid
	jid=$(sbatch --parsable "$sd/sweep.sbatch") || die "sweep --slurm: sbatch refused the array job ($sd/sweep.sbatch)"
	jid=${jid%%;*}
	mid=$(sbatch --parsable --dependency=afterany:"$jid" "$sd/merge.sbatch") || {
		scancel "$jid"
		die "sweep --slurm: sbatch refused the merge job; array job $jid cancelled"
	}
	mid=${mid%%;*}
	printf '%s\n%s\n' "$jid" "$mid" > "$sd/jobs"
	echo "kvmlab: sweep $run_id: $todo runs in $ntasks array tasks (up to $chunk runs each, $maxpar at once): job $jid, merge job $mid"
	echo "progress: ./kvmlab --results $results sweep-status $run_id"
}

# One array task (on a compute node): boot the test machine for plan-I.
sweep_task() {
	local sd=$1 i=$2 token=$3 node rc chunk
	node=$(hostname)
	if [ "$(cat "$sd/token" 2>/dev/null)" != "$token" ]; then
		echo "kvmlab: sweep task $i on $node cannot see $sd (or it belongs to a newer submission): the results folder must be on a filesystem every node shares" >&2
		exit 2
	fi
	[ -x "$bin" ] || { echo "kvmlab: sweep task $i on $node: no $bin (the built tree must be shared too)" >&2; exit 2; }
	[ -f "$sd/plan-$i" ] || { echo "kvmlab: sweep task $i: no plan $sd/plan-$i" >&2; exit 2; }
	chunk=$sd/chunk-$i
	rm -rf "$chunk"
	local commit meta
	commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
	meta=(--meta "git_commit=$commit" --meta "qemu=$(qemu-system-x86_64 --version 2>/dev/null | head -1)"
		--meta "testmachine=qemu tcg -cpu max, kernel $("$top/testmachine/kernel-version")"
		--meta "host_kernel=$(uname -r)" --meta "timing=wall-clock")
	echo "== task $i on $node: $(wc -l < "$sd/plan-$i") runs of $(cut -f1 "$sd/plan-$i" | sort -u | tr '\n' ' ')"
	"$top/testmachine/run" --results "$chunk" "${tm_opts[@]}" -- sh -c \
		'echo "$1" | base64 -d > /tmp/plan && shift && exec bin/kvmlab run --plan /tmp/plan "$@"' \
		sh "$(base64 -w0 "$sd/plan-$i")" --results results --run-id boot \
		--progress "0/$(wc -l < "$sd/plan-$i")" "${meta[@]}" --meta "node=$node" \
		--meta "slurm_job=${SLURM_ARRAY_JOB_ID:-none}" --meta "slurm_task=$i"
	rc=$?
	if [ -f "$chunk/boot/runs.csv" ]; then
		# Which node ran each run: the report counts them.
		awk -F, -v node="$node" 'NR == 1 { print "hv,workload,params,rep,node"; next }
			{ print $1 "," $2 "," $3 "," $4 "," node }' "$chunk/boot/runs.csv" > "$chunk/boot/nodes.csv"
		cp "$chunk/boot/meta.json" "$sd/task-$i.meta.json" 2>/dev/null
	fi
	echo "$rc $node" > "$sd/task-$i.status"
	exit "$rc"
}

# The merge job: every chunk's rows into runs.csv, then the table and report.
sweep_merge_slurm() {
	local dir=$results/$run_id
	slurm_take_chunks "$dir" || die "sweep-merge-slurm: merging failed"
	[ -f "$dir/runs.csv" ] || die "sweep-merge-slurm: no task left any rows"
	"$bin" table "$dir"
	"$bin" report "$dir" && echo "report: $dir/report.md"
	local failed
	failed=$(grep -L '^0 ' "$dir"/slurm/task-*.status 2>/dev/null | wc -l)
	[ "$failed" = 0 ] || echo "kvmlab: $failed task(s) failed or never ran; submit the same --run-id again to run what is missing"
}

# Count the array task ids in Slurm's notation: 3, 0-5, 2,4-6, [0-3%2].
slurm_count_ids() {
	echo "$1" | tr -d '[]' | sed 's/%.*//' | tr ',' '\n' |
		awk -F- 'NF == 2 { n += $2 - $1 + 1; next } NF == 1 && $1 != "" { n++ } END { print n + 0 }'
}

# sweep-status RUN_ID: the array's tasks by state, from Slurm's accounting
# (sacct) when the cluster keeps it, else from the controller (scontrol,
# which remembers finished jobs for MinJobAge seconds), else from the
# tasks' own status files.
sweep_status() {
	[ $# = 1 ] || die "usage: ./kvmlab [--results DIR] sweep-status RUN_ID"
	local dir=$results/$1 sd jid mid lines src
	sd=$dir/slurm
	[ -s "$sd/jobs" ] || die "sweep-status: $dir was not submitted to Slurm (no $sd/jobs)"
	jid=$(sed -n 1p "$sd/jobs") mid=$(sed -n 2p "$sd/jobs")
	local ntasks
	ntasks=$(ls "$sd"/plan-* 2>/dev/null | wc -l)
	if lines=$(sacct -n -P -X -j "$jid" -o JobID,State 2>/dev/null) && [ -n "$lines" ]; then
		src="Slurm accounting (sacct)"
		lines=$(echo "$lines" | sed 's/^[0-9]*_//; s/|/ /')
	elif lines=$(scontrol -o show job "$jid" 2>/dev/null) && [ -n "$lines" ]; then
		src="the Slurm controller (scontrol; no accounting database)"
		lines=$(echo "$lines" | sed -n 's/.*ArrayTaskId=\([^ ]*\).* JobState=\([A-Z_]*\).*/\1 \2/p')
	else
		src="the tasks' status files (Slurm no longer knows job $jid)"
		lines=$(for f in "$sd"/plan-*; do
			i=${f##*-}
			if [ -f "$sd/task-$i.status" ]; then
				[ "$(cut -d' ' -f1 "$sd/task-$i.status")" = 0 ] && echo "$i COMPLETED" || echo "$i FAILED"
			else
				echo "$i UNKNOWN"
			fi
		done)
	fi
	local pending=0 running=0 done_n=0 failed=0 other=0 ids state n
	while read -r ids state; do
		[ -n "$ids" ] || continue
		n=$(slurm_count_ids "$ids")
		case $state in
		PENDING|REQUEUED|SUSPENDED|RESV_DEL_HOLD) pending=$((pending + n)) ;;
		RUNNING|CONFIGURING|COMPLETING|STAGE_OUT|SIGNALING) running=$((running + n)) ;;
		COMPLETED) done_n=$((done_n + n)) ;;
		CANCELLED*|FAILED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) failed=$((failed + n)) ;;
		*) other=$((other + n)) ;;
		esac
	done <<< "$lines"
	local mstate
	mstate=$(sacct -n -P -X -j "$mid" -o State 2>/dev/null | head -1)
	[ -n "$mstate" ] || mstate=$(scontrol -o show job "$mid" 2>/dev/null | sed -n 's/.* JobState=\([A-Z_]*\).*/\1/p')
	local unknown= seen=$((pending + running + done_n + failed + other))
	[ "$other" = 0 ] || unknown=", $other in another state"
	# A task cancelled before it started leaves no record with the controller.
	if [ "$seen" -lt "$ntasks" ]; then
		failed=$((failed + ntasks - seen))
		unknown="$unknown ($((ntasks - seen)) cancelled before they started)"
	fi
	echo "sweep $1: job $jid, $ntasks tasks: $pending pending, $running running, $done_n done, $failed failed$unknown"
	echo "merge job $mid: ${mstate:-unknown to Slurm}"
	echo "from $src"
	[ -f "$dir/runs.csv" ] && echo "runs.csv: $(($(wc -l < "$dir/runs.csv") - 1)) rows merged"
	return 0
}
