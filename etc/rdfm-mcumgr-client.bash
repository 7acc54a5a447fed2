# bash completion for rdfm-mcumgr-client: its flags and commands, the smp
# command words and options, serial devices, image files, and --board
# names read from the config (through check-config).  Installed by make
# install into share/bash-completion/completions.

_rdfm_mcumgr_smp_words() {
	case $1 in
	"") echo "echo params reset upgrade image os stat shell fs" ;;
	image) echo "list upload test confirm erase" ;;
	os) echo "echo reset params info taskstat mpstat datetime bootloader" ;;
	stat) echo "list show" ;;
	fs) echo "upload download stat hash" ;;
	esac
}

# Names --board takes: devices, members and group/member of the config.
_rdfm_mcumgr_boards() {
	local prog=$1 cfg=$2
	"$prog" ${cfg:+-c "$cfg"} check-config 2>/dev/null | awk '
		/^device [^:]*:/ { sub(/^device /, ""); sub(/:.*/, ""); print }
		/^group [^:]*:/ { g = $0; sub(/^group /, "", g); sub(/:.*/, "", g) }
		/^  member [^:]*:/ { m = $0; sub(/^  member /, "", m);
			sub(/:.*/, "", m); print m; print g "/" m }'
}

_rdfm_mcumgr_client() {
	local cur prev prog=$1 i w cfg="" smp=-1 words=()
	local IFS=$' \t\n'

	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-c | --config) cfg=${COMP_WORDS[i + 1]} ;;
		--config=*) cfg=${w#--config=} ;;
		smp) [ "$smp" -lt 0 ] && smp=$i ;;
		esac
	done

	# Values of the options that take one.
	case $prev in
	-c | --config | --state-dir | -k | --key-dir | --verify-key)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--device)
		COMPREPLY=($(compgen -W "$(ls -d /dev/ttyACM* /dev/ttyUSB* \
			/dev/ttyS* /dev/serial/by-id/* 2>/dev/null)" -- "$cur"))
		return
		;;
	--transport | --conntype)
		COMPREPLY=($(compgen -W "serial udp ble" -- "$cur"))
		return
		;;
	--type)
		COMPREPLY=($(compgen -W "sha256 crc32" -- "$cur"))
		return
		;;
	--baud)
		COMPREPLY=($(compgen -W "9600 19200 38400 57600 115200 230400 \
			460800 921600 1000000" -- "$cur"))
		return
		;;
	--board)
		COMPREPLY=($(compgen -W "$(_rdfm_mcumgr_boards "$prog" "$cfg")" \
			-- "$cur"))
		return
		;;
	--address | --connstring | --mtu | --device-index | --peer-name | \
		--att-socket | --window | --timeout | --erase-timeout | \
		--connect-timeout | --retries | --stall | --reboot-timeout | \
		--confirm-timeout | -s | --server | -r | --retries | -i | \
		--interval)
		return
		;;
	esac

	if [ "$smp" -lt 0 ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--config --server --key-dir \
				--retries --interval --state-dir --once --verbose \
				--help --version" -- "$cur"))
		elif [ "${COMP_WORDS[COMP_CWORD - 1]}" = artifact ]; then
			COMPREPLY=($(compgen -W "inspect" -- "$cur"))
		elif [ "${COMP_WORDS[COMP_CWORD - 2]}" = artifact ]; then
			COMPREPLY=($(compgen -f -- "$cur"))
		else
			COMPREPLY=($(compgen -W "check-config artifact smp" -- "$cur"))
		fi
		return
	fi

	# After smp: the words so far that are not options or their values.
	for ((i = smp + 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--device | --address | --baud | --mtu | --device-index | \
			--peer-name | --att-socket | --board | -c | --config | \
			--transport | --conntype | --connstring | --window | \
			--timeout | --erase-timeout | --connect-timeout | \
			--retries | --stall | --reboot-timeout | \
			--confirm-timeout | --type)
			i=$((i + 1))
			;;
		-*) ;;
		*) words+=("$w") ;;
		esac
	done
	# The board's command line after "shell exec" is not ours.
	[ "${words[0]}" = shell ] && [ ${#words[@]} -ge 2 ] && return

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "--device --baud --mtu --address \
			--peer-name --device-index --conntype --connstring --board \
			--config --transport --att-socket --json --quiet --verbose \
			--timeout --retries --connect-timeout --erase-timeout \
			--smp-v2 --window --stall --self-confirm --reboot-timeout \
			--confirm-timeout --no-resume --type --help" -- "$cur"))
		return
	fi
	case ${#words[@]} in
	0)
		COMPREPLY=($(compgen -W "$(_rdfm_mcumgr_smp_words "")" -- "$cur"))
		;;
	1)
		case ${words[0]} in
		upgrade) COMPREPLY=($(compgen -f -X '!*.@(bin|hex)' -- "$cur")
			$(compgen -d -- "$cur")) ;;
		shell) COMPREPLY=($(compgen -W "exec" -- "$cur")) ;;
		*) COMPREPLY=($(compgen -W "$(_rdfm_mcumgr_smp_words \
			"${words[0]}")" -- "$cur")) ;;
		esac
		;;
	*)
		case "${words[0]} ${words[1]}" in
		"image upload") COMPREPLY=($(compgen -f -X '!*.@(bin|hex)' -- "$cur")
			$(compgen -d -- "$cur")) ;;
		"fs upload")
			[ ${#words[@]} -eq 2 ] && COMPREPLY=($(compgen -f -- "$cur")) ;;
		"fs download")
			[ ${#words[@]} -eq 3 ] && COMPREPLY=($(compgen -f -- "$cur")) ;;
		"os datetime")
			[ ${#words[@]} -eq 2 ] && COMPREPLY=($(compgen -W "set" -- "$cur"))
			[ ${#words[@]} -eq 3 ] && COMPREPLY=($(compgen -W "now" -- "$cur")) ;;
		esac
		;;
	esac
}

shopt -s extglob
complete -F _rdfm_mcumgr_client rdfm-mcumgr-client
