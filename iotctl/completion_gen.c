/*
 * completion_gen.c - write iotctl's bash completion script from the command table.
 *
 * Run at build time (iotctl/CMakeLists.txt); its output is installed as
 * share/bash-completion/completions/iotctl. The script holds three tables generated here:
 * which words may follow a phrase of command words (_iotctl_next["iotctl group member"] =
 * "add remove"), the options of each full command (_iotctl_opts["iotctl device add"]), and which of
 * them take a value (_iotctl_takes: the value is skipped and not completed). Its one function walks
 * the words typed so far, keeps the longest phrase the tables know, and offers what may follow it.
 * Nothing in the script names a command: a command added to the table is completed after a rebuild.
 */
#include "ctl_commands.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Global options (before the command) and their value-taking subset; as in iotctl's help. */
static const char global_options[] = "-s --socket -t --tenant --json --timeout-ms -h --help "
                                     "--version";
static const char global_valued[] = "-s --socket -t --tenant --timeout-ms";
/* Accepted after every command as well (output format and help). */
static const char command_extras[] = "--json --csv --help";

/* Length of the first n words of words (with the spaces between them). */
static size_t phrase_len(const char *words, int nwords)
{
    const char *p = words;
    for (int i = 0; i < nwords; i++) {
        p += strcspn(p, " ");
        if (i + 1 < nwords) {
            if (*p == '\0')
                return 0;
            p++;
        }
    }
    return (size_t)(p - words);
}

static int word_count(const char *words)
{
    int n = 1;
    for (const char *p = words; *p; p++)
        n += *p == ' ';
    return n;
}

/* Print the words that may follow the phrase prefix[0..len) (empty: the first words), each once:
 * several commands share a phrase (a noun's verbs). */
static void print_next(const char *prefix, size_t len)
{
    const char *seen[CTL_COMMAND_COUNT];
    int nseen = 0;
    for (int d = 0; d < CTL_COMMAND_COUNT; d++) {
        const char *w = ctl_commands[d].words;
        if (len > 0 && (strncmp(w, prefix, len) != 0 || w[len] != ' '))
            continue;
        const char *next = len > 0 ? w + len + 1 : w;
        size_t next_len = strcspn(next, " ");
        bool dup = false;
        for (int s = 0; s < nseen && !dup; s++)
            dup = strncmp(seen[s], next, next_len) == 0 && strcspn(seen[s], " ") == next_len;
        if (dup)
            continue;
        seen[nseen++] = next;
        printf("%s%.*s", nseen > 1 ? " " : "", (int)next_len, next);
    }
}

/* True when an earlier command already has the same first n words (its entry was printed). */
static bool phrase_printed(int c, int n)
{
    size_t len = phrase_len(ctl_commands[c].words, n);
    for (int d = 0; d < c; d++)
        if (word_count(ctl_commands[d].words) > n &&
            strncmp(ctl_commands[d].words, ctl_commands[c].words, len) == 0 &&
            ctl_commands[d].words[len] == ' ')
            return true;
    return false;
}

int main(void)
{
    printf("# bash completion for iotctl(8), generated at build time from iotctl's command "
           "table\n# (iotctl/completion_gen.c). Do not edit.\n\n");
    printf("declare -gA _iotctl_next=(\n");
    printf("    [iotctl]=\"");
    print_next("", 0);
    printf("\"\n");
    for (int c = 0; c < CTL_COMMAND_COUNT; c++)
        for (int n = 1; n < word_count(ctl_commands[c].words); n++) {
            if (phrase_printed(c, n))
                continue;
            size_t len = phrase_len(ctl_commands[c].words, n);
            printf("    [\"iotctl %.*s\"]=\"", (int)len, ctl_commands[c].words);
            print_next(ctl_commands[c].words, len);
            printf("\"\n");
        }
    printf(")\n\ndeclare -gA _iotctl_opts=(\n");
    for (int c = 0; c < CTL_COMMAND_COUNT; c++) {
        printf("    [\"iotctl %s\"]=\"", ctl_commands[c].words);
        for (size_t p = 0; p < ctl_command_param_count(&ctl_commands[c]); p++)
            if (ctl_commands[c].params[p].flag != NULL)
                printf("%s ", ctl_commands[c].params[p].flag);
        printf("%s\"\n", command_extras);
    }
    printf(")\n\ndeclare -gA _iotctl_takes=(\n");
    for (int c = 0; c < CTL_COMMAND_COUNT; c++) {
        printf("    [\"iotctl %s\"]=\"", ctl_commands[c].words);
        for (size_t p = 0; p < ctl_command_param_count(&ctl_commands[c]); p++) {
            const struct ctl_param *param = &ctl_commands[c].params[p];
            if (param->flag != NULL && param->kind != CTL_ARG_BOOL)
                printf("%s ", param->flag);
        }
        printf("\"\n");
    }
    /* Commands with a file argument (CTL_ARG_PATH, CTL_ARG_LOCAL_FILE): words that are not options
     * complete as file names there. */
    printf(")\n\n_iotctl_files=\" ");
    for (int c = 0; c < CTL_COMMAND_COUNT; c++)
        for (size_t p = 0; p < ctl_command_param_count(&ctl_commands[c]); p++)
            if ((ctl_commands[c].params[p].kind == CTL_ARG_PATH ||
                 ctl_commands[c].params[p].kind == CTL_ARG_LOCAL_FILE) &&
                ctl_commands[c].params[p].flag == NULL) {
                printf("iotctl_");
                for (const char *w = ctl_commands[c].words; *w; w++)
                    putchar(*w == ' ' ? '_' : *w);
                printf(" ");
                break;
            }
    printf("\"\n\n_iotctl_global_takes=\"%s\"\n\n", global_valued);
    printf("_iotctl()\n"
           "{\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} phrase=iotctl word i skip=0 candidates\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        word=${COMP_WORDS[i]}\n"
           "        if ((skip)); then skip=0; continue; fi\n"
           "        case $word in\n"
           "        --*=*) continue ;;\n"
           "        -*)\n"
           "            [[ \" $_iotctl_global_takes ${_iotctl_takes[$phrase]-} \" == *\" $word \"* "
           "]] &&\n"
           "                skip=1\n"
           "            continue\n"
           "            ;;\n"
           "        esac\n"
           "        if [[ -n ${_iotctl_next[$phrase]+x} ]] &&\n"
           "           [[ -n ${_iotctl_next[\"$phrase $word\"]+x} || -n ${_iotctl_opts[\"$phrase "
           "$word\"]+x} ]]; then\n"
           "            phrase=\"$phrase $word\"\n"
           "        fi\n"
           "    done\n"
           "    ((skip)) && return 0\n"
           "    if [[ $cur == -* ]]; then\n"
           "        if [[ -n ${_iotctl_opts[$phrase]+x} ]]; then\n"
           "            candidates=${_iotctl_opts[$phrase]}\n"
           "        else\n"
           "            candidates=\"%s\"\n"
           "        fi\n"
           "    elif [[ $_iotctl_files == *\" ${phrase// /_} \"* ]]; then\n"
           "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "        return 0\n"
           "    else\n"
           "        candidates=${_iotctl_next[$phrase]-}\n"
           "    fi\n"
           "    COMPREPLY=($(compgen -W \"$candidates\" -- \"$cur\"))\n"
           "}\n"
           "complete -F _iotctl iotctl\n",
           global_options);
    return 0;
}
